// SPDX-License-Identifier: Apache-2.0
// Coordinator requests -> rank supervisors, and their results and exits -> replies and
// notifications (see session.hpp). Every wait is an Asio handler: the status pipe and pidfd
// of each supervisor, control-socket requests, and a deadline timer per ROUND_STEP.
#include "session.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ferry/proto/status.hpp"
#include "log.hpp"

namespace ferry::agent {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

std::uint16_t wire(const Error& e) { return proto::to_wire(e.code()); }
constexpr std::uint16_t kNotFound = static_cast<std::uint16_t>(errc::not_found);
constexpr std::uint16_t kBusy = static_cast<std::uint16_t>(errc::busy);
constexpr std::uint16_t kPermission = static_cast<std::uint16_t>(errc::permission);
constexpr std::uint16_t kInternal = static_cast<std::uint16_t>(proto::perr::internal);
constexpr std::uint16_t kTimeout = static_cast<std::uint16_t>(proto::perr::timeout);

std::uint64_t ns_since(Clock::time_point t) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count());
}

// The agent may start ranks as another user only when it is root.
std::optional<std::string> uid_refusal(std::uint32_t uid) {
  if (::geteuid() == 0 || uid == ::geteuid()) return std::nullopt;
  return "agent runs as uid " + std::to_string(::geteuid()) + " and cannot start ranks as uid " + std::to_string(uid);
}

}  // namespace

// One live rank supervisor: its status pipe (until the final status line) and its pidfd.
struct Session::Watch {
  Watch(asio::io_context& io, std::shared_ptr<RankProc> r) : rank(std::move(r)), status(io), pidfd(io) {}
  std::shared_ptr<RankProc> rank;
  asio::posix::stream_descriptor status, pidfd;
  asio::streambuf buf{1 << 16};
  std::string phase = "launch";         // the phase a missing status line is charged to
  bool final_seen = false;
  std::optional<int> exited;            // wait status, if the supervisor ended before final_seen
  std::function<void(const StatusLine&)> on_final;
};

Session::Session(asio::io_context& io, SessionConfig cfg, LinkConfig link)
    : io_(io),
      cfg_(std::move(cfg)),
      paths_{cfg_.store},
      link_(io, std::move(link),
            [this](std::uint64_t epoch, std::uint64_t id, proto::AnyMessage m) { on_request(epoch, id, std::move(m)); },
            [this] { return state_.live_ranks(); }),
      mpi_(io, link_, cfg_.node, paths_) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) == 0) {
    alive_r_.reset(p[0]);
    alive_w_.reset(p[1]);
  }
}

Session::~Session() = default;

void Session::start() { link_.start(); }

void Session::stop() {
  link_.stop();
  mpi_.stop();
  for (auto& [pid, w] : watches_) {
    boost::system::error_code ec;
    w->status.close(ec);
    w->pidfd.close(ec);
  }
  watches_.clear();
}

void Session::on_request(std::uint64_t epoch, std::uint64_t id, proto::AnyMessage msg) {
  if (auto* l = std::get_if<proto::LaunchRanks>(&msg)) return on_launch(epoch, id, *l);
  if (auto* l = std::get_if<proto::LaunchMpi>(&msg)) return mpi_.launch(epoch, id, *l);
  if (auto* s = std::get_if<proto::RoundStep>(&msg)) {
    if (mpi_.owns(s->job)) return mpi_.round_step(epoch, id, *s);
    return on_round_step(epoch, id, *s);
  }
  if (auto* r = std::get_if<proto::RestoreRanks>(&msg)) return on_restore(epoch, id, *r);
}

// ---- rank supervisors -------------------------------------------------------------------

Result<void> Session::start_supervisor(const std::shared_ptr<RankProc>& rank, const SpawnSpec& given,
                                       std::function<void(const StatusLine&)> on_final) {
  SpawnSpec spec = given;
  spec.agent_fd = alive_r_.get();
  auto spawned = spawn_rank(spec);
  if (!spawned) return fail(spawned.error());
  rank->supervisor = spawned->pid;
  auto w = std::make_shared<Watch>(io_, rank);
  w->phase = rank->restart_id ? "validate" : "launch";
  w->on_final = std::move(on_final);
  w->status.assign(spawned->status.release());
  w->pidfd.assign(spawned->pidfd.release());
  watches_[spawned->pid] = w;
  log(Severity::debug, "agent.ranks", {rank->job, rank->rank, {}},
      "started rank supervisor pid " + std::to_string(spawned->pid) + ": " + spec.argv[1]);
  read_status(w);
  wait_exit(w);
  return {};
}

void Session::read_status(const std::shared_ptr<Watch>& w) {
  asio::async_read_until(w->status, w->buf, '\n', [this, w](boost::system::error_code ec, std::size_t n) {
    if (w->final_seen) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      StatusLine s;
      s.phase = w->phase;
      s.code = kInternal;
      s.message = "rank supervisor ended before reporting its " + w->phase + " result (see " +
                  paths_.rank_file(w->rank->job, w->rank->rank, ".err") + ")";
      return final_status(w, s);
    }
    std::string line(asio::buffers_begin(w->buf.data()), asio::buffers_begin(w->buf.data()) + n - 1);
    w->buf.consume(n);
    auto s = parse_status_line(line);
    if (!s) {
      StatusLine bad;
      bad.phase = w->phase;
      bad.code = kInternal;
      bad.message = "unexpected status line from rank supervisor: '" + line + "'";
      return final_status(w, bad);
    }
    if (s->phase == "validate" && s->ok) {  // restore follows
      w->phase = "restore";
      return read_status(w);
    }
    final_status(w, *s);
  });
}

void Session::final_status(const std::shared_ptr<Watch>& w, const StatusLine& s) {
  w->final_seen = true;
  boost::system::error_code ec;
  w->status.close(ec);
  auto& r = *w->rank;
  if (s.ok) {
    r.state = RankState::running;
    r.program = s.pid;
    log(Severity::info, "agent.ranks", {r.job, r.rank, {}},
        std::string(r.restart_id ? "restored rank (restart " + std::to_string(r.restart_id) + ")" : "launched rank") +
            ", pid " + std::to_string(s.pid));
  } else {
    r.state = RankState::failed;
    log(Severity::error, "agent.ranks", {r.job, r.rank, {}}, s.phase + " failed: " + s.message);
  }
  auto cb = std::move(w->on_final);
  if (cb) cb(s);
  if (w->exited) supervisor_exited(w, *w->exited);
}

void Session::wait_exit(const std::shared_ptr<Watch>& w) {
  w->pidfd.async_wait(asio::posix::stream_descriptor::wait_read, [this, w](boost::system::error_code ec) {
    if (ec) return;
    int st = 0;
    pid_t r = ::waitpid(w->rank->supervisor, &st, WNOHANG);
    if (r == 0) return wait_exit(w);
    if (r < 0) st = 0;
    if (!w->final_seen) {
      w->exited = st;  // the status pipe still says how far it got; handled after that
      return;
    }
    supervisor_exited(w, st);
  });
}

void Session::supervisor_exited(const std::shared_ptr<Watch>& w, int wait_status) {
  auto& r = *w->rank;
  boost::system::error_code ec;
  w->pidfd.close(ec);
  watches_.erase(r.supervisor);
  bool ran = r.state == RankState::running;
  r.state = ran ? RankState::exited : RankState::failed;
  if (state_.find(r.job, r.rank) == w->rank) state_.remove(r.job, r.rank);
  if (!ran) return;  // a failed start is reported in LAUNCH_RESULT / RESTORE_RESULT
  ExitReport e = exit_report(wait_status);
  log(Severity::info, "agent.ranks", {r.job, r.rank, {}},
      "rank exited: " + (e.signal ? "signal " + std::to_string(*e.signal) : "status " + std::to_string(*e.exit_status)) +
          (r.report_exit ? "" : " (stopped after a failed restart; not reported)"));
  if (!r.report_exit) return;
  proto::RankExited m;
  m.job = r.job;
  m.restart_id = r.restart_id;
  m.rank = r.rank;
  m.pid = r.program;
  m.exit_status = e.exit_status;
  m.signal = e.signal;
  m.time_ns = proto::realtime_ns();
  link_.notify(m);
}

// ---- LAUNCH_RANKS -----------------------------------------------------------------------

void Session::on_launch(std::uint64_t epoch, std::uint64_t id, const proto::LaunchRanks& m) {
  log(Severity::info, "agent.ranks", {m.job, {}, {}},
      "launch " + std::to_string(m.ranks.size()) + " rank(s) of " + std::to_string(m.ntasks) + " as uid " +
          std::to_string(m.uid));
  struct Gather {
    proto::LaunchResult result;
    std::size_t missing = 0;
  };
  auto g = std::make_shared<Gather>();
  g->result.job = m.job;
  g->result.ranks.resize(m.ranks.size());
  g->missing = m.ranks.size();
  auto deliver = [this, g, epoch, id](std::size_t i, proto::RankStarted rs) {
    g->result.ranks[i] = std::move(rs);
    if (--g->missing == 0) link_.reply(epoch, id, g->result);
  };
  if (m.ranks.empty()) return link_.reply(epoch, id, g->result);
  auto refusal = uid_refusal(m.uid);
  auto job_dir = make_dirs_owned(paths_.job_dir(m.job), m.uid, m.gid);
  for (std::size_t i = 0; i < m.ranks.size(); ++i) {
    const std::uint32_t rank = m.ranks[i];
    if (refusal) {
      deliver(i, {rank, 0, kPermission, *refusal});
      continue;
    }
    if (!job_dir) {
      deliver(i, {rank, 0, wire(job_dir.error()), job_dir.error().message()});
      continue;
    }
    RankProc p;
    p.job = m.job;
    p.rank = rank;
    p.uid = m.uid;
    p.gid = m.gid;
    p.control = paths_.control_socket(m.job, rank);
    auto proc = state_.add(p);
    if (!proc) {
      deliver(i, {rank, 0, kBusy, "rank " + std::to_string(rank) + " of job " + m.job + " already runs on node " + cfg_.node});
      continue;
    }
    auto started = start_supervisor(proc, rank_launch_spec(cfg_.ferry, paths_, m, rank),
                                    [deliver, i, rank](const StatusLine& s) {
                                      deliver(i, {rank, s.ok ? s.pid : 0, s.ok ? std::uint16_t{0} : s.code, s.message});
                                    });
    if (!started) {
      state_.remove(m.job, rank);
      log(Severity::error, "agent.ranks", {m.job, rank, {}}, started.error().message());
      deliver(i, {rank, 0, wire(started.error()), started.error().message()});
    }
  }
}

// ---- ROUND_STEP -------------------------------------------------------------------------

void Session::on_round_step(std::uint64_t epoch, std::uint64_t id, const proto::RoundStep& m) {
  const auto phase_name = std::string(proto::name(m.phase));
  log(Severity::info, "agent.round", {m.job, {}, m.generation},
      phase_name + " round " + std::to_string(m.round_id) + " for " + std::to_string(m.ranks.size()) + " rank(s)");
  struct Gather {
    proto::RoundReply reply;
    std::vector<bool> done;
    std::size_t missing = 0;
    bool sent = false;
    Clock::time_point t0 = Clock::now();
    std::unique_ptr<asio::steady_timer> timer;
  };
  auto g = std::make_shared<Gather>();
  g->reply.job = m.job;
  g->reply.generation = m.generation;
  g->reply.round_id = m.round_id;
  g->reply.phase = m.phase;
  g->reply.results.resize(m.ranks.size());
  g->done.assign(m.ranks.size(), false);
  g->missing = m.ranks.size();
  auto send = [this, g, epoch, id, m, phase_name] {
    if (g->sent) return;
    g->sent = true;
    if (g->timer) g->timer->cancel();
    std::uint64_t bytes = 0;
    for (const auto& r : g->reply.results) {
      bytes += r.bytes;
      if (r.code != 0)
        log(Severity::warning, "agent.round", {m.job, r.rank, m.generation},
            phase_name + " failed: " + proto::error_from_wire(r.code, r.message).message());
    }
    log(Severity::info, "agent.round", {m.job, {}, m.generation},
        phase_name + " done in " + std::to_string(ns_since(g->t0) / 1000000) + " ms" +
            (m.phase == proto::RoundPhase::dump ? ", " + std::to_string(bytes) + " bytes" : ""));
    link_.reply(epoch, id, g->reply);
  };
  auto deliver = [g, send](std::size_t i, proto::RankResult r) {
    if (g->sent || g->done[i]) return;
    g->done[i] = true;
    g->reply.results[i] = std::move(r);
    if (--g->missing == 0) send();
  };
  if (m.ranks.empty()) return send();

  // Answer a little before the coordinator's own deadline, so the reply names the late ranks.
  auto deadline = m.deadline_ms ? std::chrono::milliseconds(m.deadline_ms - m.deadline_ms / 10) : cfg_.default_deadline;
  g->timer = std::make_unique<asio::steady_timer>(io_, deadline);
  g->timer->async_wait([g, deliver, m, phase_name, deadline, node = cfg_.node](boost::system::error_code ec) {
    if (ec) return;
    for (std::size_t i = 0; i < m.ranks.size(); ++i)
      deliver(i, {m.ranks[i], kTimeout,
                  phase_name + " of rank " + std::to_string(m.ranks[i]) + " did not finish within " +
                      std::to_string(deadline.count()) + " ms on node " + node,
                  0, ns_since(g->t0)});
  });

  for (std::size_t i = 0; i < m.ranks.size(); ++i) {
    const std::uint32_t rank = m.ranks[i];
    auto proc = state_.find(m.job, rank);
    const bool running = proc && proc->state == RankState::running;
    if (!running) {
      // Abort and stop have nothing to do for a rank that is gone; other phases fail.
      if (m.phase == proto::RoundPhase::abort || m.phase == proto::RoundPhase::stop ||
          m.phase == proto::RoundPhase::commit) {
        deliver(i, {rank, 0, "", 0, 0});
      } else {
        deliver(i, {rank, kNotFound, "rank " + std::to_string(rank) + " of job " + m.job + " does not run on node " + cfg_.node, 0, 0});
      }
      continue;
    }
    if (m.phase == proto::RoundPhase::prepare) {
      auto made = make_dirs_owned(m.generation_dir, proc->uid, proc->gid);
      if (made) made = make_dirs_owned(m.generation_dir + "/rank-" + std::to_string(rank), proc->uid, proc->gid);
      deliver(i, made ? proto::RankResult{rank, 0, "", 0, ns_since(g->t0)}
                      : proto::RankResult{rank, wire(made.error()), made.error().message(), 0, ns_since(g->t0)});
      continue;
    }
    auto line = control_line(m.phase, m.generation, m.generation_dir, rank);
    if (!line) {  // commit: nothing to do on the node yet (no incremental base kept)
      deliver(i, {rank, 0, "", 0, 0});
      continue;
    }
    auto t0 = Clock::now();
    control_request(io_, proc->control, *line, deadline,
                    [deliver, i, rank, phase = m.phase, t0](Result<std::string> reply) {
                      if (!reply) return deliver(i, {rank, wire(reply.error()), reply.error().message(), 0, ns_since(t0)});
                      deliver(i, rank_result(rank, phase, *reply, ns_since(t0)));
                    });
  }
}

// ---- RESTORE_RANKS ----------------------------------------------------------------------

void Session::on_restore(std::uint64_t epoch, std::uint64_t id, const proto::RestoreRanks& m) {
  log(Severity::info, "agent.ranks", {m.job, {}, m.generation},
      "restore " + std::to_string(m.ranks.size()) + " rank(s) from " + m.generation_dir + " (restart " +
          std::to_string(m.restart_id) + ")");
  struct Gather {
    proto::RestoreResult result;
    std::vector<std::shared_ptr<RankProc>> procs;
    std::size_t missing = 0;
  };
  auto g = std::make_shared<Gather>();
  g->result.job = m.job;
  g->result.restart_id = m.restart_id;
  g->result.ranks.resize(m.ranks.size());
  g->procs.resize(m.ranks.size());
  g->missing = m.ranks.size();
  auto deliver = [this, g, epoch, id, m](std::size_t i, proto::RankRestored rr) {
    g->result.ranks[i] = std::move(rr);
    if (--g->missing != 0) return;
    bool failed = false;
    for (const auto& r : g->result.ranks) failed |= r.code != 0;
    if (failed) {
      // The restart has failed: ranks restored here must not run on alone.
      for (std::size_t k = 0; k < g->procs.size(); ++k) {
        auto& p = g->procs[k];
        if (!p || p->state != RankState::running) continue;
        p->report_exit = false;
        log(Severity::warning, "agent.ranks", {m.job, p->rank, m.generation},
            "stopping the rank: restart " + std::to_string(m.restart_id) + " failed on another rank");
        control_request(io_, p->control, "stop", std::chrono::seconds(30), [pid = p->supervisor](Result<std::string> r) {
          if (!r) ::kill(pid, SIGKILL);
        });
      }
    }
    link_.reply(epoch, id, g->result);
  };
  if (m.ranks.empty()) return link_.reply(epoch, id, g->result);
  auto refusal = uid_refusal(m.uid);
  for (std::size_t i = 0; i < m.ranks.size(); ++i) {
    const std::uint32_t rank = m.ranks[i];
    if (refusal) {
      deliver(i, {rank, 0, kPermission, proto::RestartPhase::place, *refusal});
      continue;
    }
    RankProc p;
    p.job = m.job;
    p.rank = rank;
    p.restart_id = m.restart_id;
    p.uid = m.uid;
    p.gid = m.gid;
    p.control = paths_.control_socket(m.job, rank);
    auto proc = state_.add(p);
    if (!proc) {
      deliver(i, {rank, 0, kBusy, proto::RestartPhase::place,
                  "rank " + std::to_string(rank) + " of job " + m.job + " already runs on node " + cfg_.node});
      continue;
    }
    g->procs[i] = proc;
    auto started = start_supervisor(proc, rank_restore_spec(cfg_.ferry, paths_, m, rank),
                                    [deliver, i, rank](const StatusLine& s) {
                                      proto::RankRestored rr{rank, s.ok ? s.pid : 0, s.ok ? std::uint16_t{0} : s.code,
                                                             s.phase == "validate" ? proto::RestartPhase::validate
                                                                                   : proto::RestartPhase::restore,
                                                             s.message};
                                      if (s.ok) rr.phase = proto::RestartPhase::resume;
                                      deliver(i, rr);
                                    });
    if (!started) {
      state_.remove(m.job, rank);
      log(Severity::error, "agent.ranks", {m.job, rank, m.generation}, started.error().message());
      deliver(i, {rank, 0, wire(started.error()), proto::RestartPhase::validate, started.error().message()});
    }
  }
}

}  // namespace ferry::agent
