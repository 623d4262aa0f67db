// SPDX-License-Identifier: Apache-2.0
// The head agent's side of an MPI job: the launcher process, the link to rank 0's proxy and
// the round phases as that link's lines (mpi_launcher.hpp explains the mapping).
#include "mpi_launcher.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "ferry/proto/status.hpp"
#include "log.hpp"
#include "mpi_jobs.hpp"
#include "node_state.hpp"

namespace ferry::agent {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::uint16_t kNotFound = static_cast<std::uint16_t>(errc::not_found);
constexpr std::uint16_t kInternal = static_cast<std::uint16_t>(proto::perr::internal);
constexpr std::uint16_t kTimeout = static_cast<std::uint16_t>(proto::perr::timeout);
constexpr std::uint16_t kUnsupported = static_cast<std::uint16_t>(errc::unsupported);

std::string random_token() {
  std::random_device rd;
  char buf[33];
  for (int i = 0; i < 4; ++i) std::snprintf(buf + 8 * i, 9, "%08x", rd());
  return buf;
}

// argv[0] as execve needs it: absolute, else searched in the job's PATH, else ours.
std::string resolve(const std::string& exe, const std::vector<std::string>& env) {
  if (exe.find('/') != std::string::npos) return exe;
  std::string path;
  for (const auto& kv : env)
    if (kv.rfind("PATH=", 0) == 0) path = kv.substr(5);
  if (path.empty())
    if (const char* p = std::getenv("PATH")) path = p;
  std::istringstream dirs(path);
  for (std::string d; std::getline(dirs, d, ':');) {
    std::string c = (d.empty() ? "." : d) + "/" + exe;
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return exe;
}

}  // namespace

std::vector<std::string> launcher_argv(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  if (argv.empty()) return out;
  out.push_back(argv[0]);
  for (const char* v : {"FERRY_MPI_FRONT", "FERRY_MPI_TOKEN", "FERRY_MPI_RUN_DIR"}) {
    out.push_back("-x");
    out.push_back(v);
  }
  out.insert(out.end(), argv.begin() + 1, argv.end());
  return out;
}

struct MpiLaunchers::Run {
  explicit Run(asio::io_context& io) : pidfd(io), acceptor(io) {}
  proto::LaunchMpi m;
  pid_t launcher = -1;
  asio::posix::stream_descriptor pidfd;
  tcp::acceptor acceptor;
  std::shared_ptr<tcp::socket> rank0;
  asio::streambuf buf{1 << 16};
  std::string token;
  std::function<void()> report_started;  // LAUNCH_RESULT / RESTORE_RESULT, once
  bool ended = false;
  // The round in flight with rank 0 ("" if none), whether its images were reported dumped.
  std::uint64_t rounds = 0;
  std::string round;
  bool dumped = false;
  std::uint64_t bytes = 0;
  std::function<void(const std::string&)> on_line;
  std::unique_ptr<asio::steady_timer> line_timer;
};

MpiLaunchers::MpiLaunchers(asio::io_context& io, CoordinatorLink& link, std::string node, StorePaths paths)
    : io_(io), link_(link), node_(std::move(node)), paths_(std::move(paths)) {}

MpiLaunchers::~MpiLaunchers() { stop(); }

void MpiLaunchers::stop() {
  for (auto& [job, run] : runs_) {
    boost::system::error_code ec;
    run->acceptor.close(ec);
    if (run->rank0) run->rank0->close(ec);
    run->pidfd.close(ec);
    if (run->line_timer) run->line_timer->cancel();
  }
  runs_.clear();
}

// ---- LAUNCH_MPI -------------------------------------------------------------------------

void MpiLaunchers::launch(std::uint64_t epoch, std::uint64_t id, const proto::LaunchMpi& m) {
  log(Severity::info, "agent.mpi", {m.job, {}, m.generation ? std::optional<std::uint64_t>(m.generation) : std::nullopt},
      "run the launcher of " + std::to_string(m.ntasks) + " MPI ranks" +
          (m.restart_id ? " (restart " + std::to_string(m.restart_id) + ")" : ""));
  auto run = std::make_shared<Run>(io_);
  run->m = m;
  // Every rank of the launch or restart is answered at once: the launcher starts them all.
  run->report_started = [this, epoch, id, m](void) {
    if (m.restart_id == 0) {
      proto::LaunchResult r{m.job, {}};
      for (std::uint32_t k = 0; k < m.ntasks; ++k) r.ranks.push_back({k, 0, 0, ""});
      link_.reply(epoch, id, r);
    } else {
      proto::RestoreResult r{m.job, m.restart_id, {}};
      for (std::uint32_t k = 0; k < m.ntasks; ++k) r.ranks.push_back({k, 0, 0, proto::RestartPhase::resume, ""});
      link_.reply(epoch, id, r);
    }
  };
  auto refuse = [&](std::uint16_t code, const std::string& why) {
    log(Severity::error, "agent.mpi", {m.job, {}, {}}, "launcher not started: " + why);
    if (m.restart_id == 0) {
      proto::LaunchResult r{m.job, {}};
      for (std::uint32_t k = 0; k < m.ntasks; ++k) r.ranks.push_back({k, 0, code, why});
      link_.reply(epoch, id, r);
    } else {
      proto::RestoreResult r{m.job, m.restart_id, {}};
      for (std::uint32_t k = 0; k < m.ntasks; ++k) r.ranks.push_back({k, 0, code, proto::RestartPhase::restore, why});
      link_.reply(epoch, id, r);
    }
  };
  if (auto old = runs_.find(m.job); old != runs_.end() && !old->second->ended)
    return refuse(static_cast<std::uint16_t>(errc::busy), "the launcher of job " + m.job + " already runs on node " + node_);
  if (m.argv.empty()) return refuse(static_cast<std::uint16_t>(errc::protocol), "no launcher command line");
  if (::geteuid() != 0 && m.uid != ::geteuid())
    return refuse(static_cast<std::uint16_t>(errc::permission), "agent cannot start a launcher as uid " + std::to_string(m.uid));
  boost::system::error_code ec;
  run->acceptor.open(tcp::v4(), ec);
  if (!ec) run->acceptor.bind(tcp::endpoint(asio::ip::address_v4::loopback(), 0), ec);
  if (!ec) run->acceptor.listen(4, ec);
  if (ec) return refuse(kInternal, "listen for rank 0's proxy: " + ec.message());
  run->token = random_token();
  if (auto made = make_dirs_owned(m.run_dir, m.uid, m.gid); !made)
    return refuse(proto::to_wire(made.error().code()), made.error().message());

  SpawnSpec spec;
  spec.argv = launcher_argv(m.argv);
  spec.exe = resolve(spec.argv[0], m.env);
  for (const auto& kv : m.env)
    if (kv.rfind("FERRY_MPI_FRONT=", 0) != 0 && kv.rfind("FERRY_MPI_TOKEN=", 0) != 0 &&
        kv.rfind("FERRY_MPI_RUN_DIR=", 0) != 0)
      spec.env.push_back(kv);
  spec.env.push_back("FERRY_MPI_FRONT=127.0.0.1:" + std::to_string(run->acceptor.local_endpoint().port()));
  spec.env.push_back("FERRY_MPI_TOKEN=" + run->token);
  spec.env.push_back("FERRY_MPI_RUN_DIR=" + m.run_dir);
  spec.cwd = m.cwd.empty() ? "/" : m.cwd;
  spec.uid = m.uid;
  spec.gid = m.gid;
  spec.stdout_path = paths_.job_dir(m.job) + "/mpirun.out";
  spec.stderr_path = paths_.job_dir(m.job) + "/mpirun.err";
  spec.end_with_agent = true;  // a head agent that dies takes the job with it (docs/mpi.md)
  auto spawned = spawn_rank(spec);
  if (!spawned) return refuse(proto::to_wire(spawned.error().code()), spawned.error().message());
  run->launcher = spawned->pid;
  run->pidfd.assign(spawned->pidfd.release());
  runs_[m.job] = run;
  log(Severity::info, "agent.mpi", {m.job, {}, {}}, "launcher pid " + std::to_string(run->launcher) + ": " + spec.exe);
  accept(run);
  wait_launcher(run);
}

void MpiLaunchers::accept(const std::shared_ptr<Run>& run) {
  auto s = std::make_shared<tcp::socket>(io_);
  run->acceptor.async_accept(*s, [this, run, s](boost::system::error_code ec) {
    if (ec) return;
    read_hello(run, s);
    accept(run);
  });
}

void MpiLaunchers::read_hello(const std::shared_ptr<Run>& run, std::shared_ptr<tcp::socket> s) {
  auto buf = std::make_shared<asio::streambuf>(4096);
  asio::async_read_until(*s, *buf, '\n', [this, run, s, buf](boost::system::error_code ec, std::size_t n) {
    if (ec || run->ended) return;
    std::string line(asio::buffers_begin(buf->data()), asio::buffers_begin(buf->data()) + n - 1);
    buf->consume(n);
    std::istringstream words(line);
    std::string hello, token;
    std::uint32_t size = 0;
    words >> hello >> token >> size;
    boost::system::error_code ignored;
    if (hello != "hello" || token != run->token || run->rank0) {
      log(Severity::warning, "agent.mpi", {run->m.job, {}, {}}, "refused a connection to the rank 0 link");
      s->close(ignored);
      return;
    }
    s->set_option(tcp::no_delay(true), ignored);
    run->rank0 = s;
    // Bytes after the hello line belong to the link.
    std::ostream(&run->buf) << std::string(asio::buffers_begin(buf->data()), asio::buffers_end(buf->data()));
    log(Severity::info, "agent.mpi", {run->m.job, 0u, {}},
        "rank 0's proxy connected: " + std::to_string(size) + " ranks passed MPI_Init");
    if (auto r = std::exchange(run->report_started, nullptr)) r();
    read_lines(run);
  });
}

void MpiLaunchers::read_lines(const std::shared_ptr<Run>& run) {
  auto s = run->rank0;
  asio::async_read_until(*s, run->buf, '\n', [this, run, s](boost::system::error_code ec, std::size_t n) {
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      log(Severity::info, "agent.mpi", {run->m.job, 0u, {}}, "rank 0's link closed: " + ec.message());
      boost::system::error_code ignored;
      s->close(ignored);
      if (run->rank0 == s) run->rank0.reset();
      if (auto cb = std::exchange(run->on_line, nullptr)) cb("");
      return;
    }
    std::string line(asio::buffers_begin(run->buf.data()), asio::buffers_begin(run->buf.data()) + n - 1);
    run->buf.consume(n);
    on_line(run, line);
    read_lines(run);
  });
}

void MpiLaunchers::on_line(const std::shared_ptr<Run>& run, const std::string& line) {
  std::istringstream words(line);
  std::string kind, round;
  words >> kind >> round;
  if (round.empty() || round != run->round || !run->on_line) {
    log(Severity::debug, "agent.mpi", {run->m.job, 0u, {}}, "dropped a line of no round in flight: " + line);
    return;
  }
  if (run->line_timer) run->line_timer->cancel();
  auto cb = std::exchange(run->on_line, nullptr);
  cb(line);
}

void MpiLaunchers::send_line(const std::shared_ptr<Run>& run, const std::string& line) {
  if (!run->rank0) return;
  auto text = std::make_shared<std::string>(line + "\n");
  asio::async_write(*run->rank0, asio::buffer(*text), [text](boost::system::error_code, std::size_t) {});
}

void MpiLaunchers::await_line(const std::shared_ptr<Run>& run, std::chrono::milliseconds within,
                              std::function<void(const std::string&)> cb) {
  if (!run->rank0 || run->ended) return cb("");
  run->on_line = std::move(cb);
  run->line_timer = std::make_unique<asio::steady_timer>(io_, within);
  run->line_timer->async_wait([run](boost::system::error_code ec) {
    if (ec) return;
    if (auto f = std::exchange(run->on_line, nullptr)) f("");
  });
}

// ---- the launcher's end -----------------------------------------------------------------

void MpiLaunchers::wait_launcher(const std::shared_ptr<Run>& run) {
  run->pidfd.async_wait(asio::posix::stream_descriptor::wait_read, [this, run](boost::system::error_code ec) {
    if (ec) return;
    int st = 0;
    pid_t r = ::waitpid(run->launcher, &st, WNOHANG);
    if (r == 0) return wait_launcher(run);
    launcher_ended(run, r < 0 ? 0 : st);
  });
}

void MpiLaunchers::launcher_ended(const std::shared_ptr<Run>& run, int wait_status) {
  run->ended = true;
  boost::system::error_code ec;
  run->pidfd.close(ec);
  run->acceptor.close(ec);
  int status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
  if (auto r = std::exchange(run->report_started, nullptr)) r();
  if (auto cb = std::exchange(run->on_line, nullptr)) cb("");
  if (run->rank0) run->rank0->close(ec);
  proto::MpiRunEnded m;
  m.job = run->m.job;
  m.restart_id = run->m.restart_id;
  m.launcher_status = status;
  m.ranks = coord::read_mpi_events(run->m.run_dir);
  log(Severity::info, "agent.mpi", {run->m.job, {}, {}},
      "launcher ended with status " + std::to_string(status) + "; " + std::to_string(m.ranks.size()) +
          " rank(s) reported their end");
  link_.notify(m);
}

// ---- ROUND_STEP -------------------------------------------------------------------------

void MpiLaunchers::round_step(std::uint64_t epoch, std::uint64_t id, const proto::RoundStep& m) {
  auto it = runs_.find(m.job);
  auto run = it == runs_.end() ? nullptr : it->second;
  const std::string phase = std::string(proto::name(m.phase));
  auto deadline = std::chrono::milliseconds(m.deadline_ms ? m.deadline_ms - m.deadline_ms / 10 : 120'000);
  auto t0 = std::chrono::steady_clock::now();
  // One result per rank: ok, except those in `failed` (rank -> code, message).
  auto answer = [this, epoch, id, m, t0](std::map<std::uint32_t, std::pair<std::uint16_t, std::string>> failed,
                                         std::uint64_t rank0_bytes) {
    proto::RoundReply r{m.job, m.generation, m.round_id, m.phase, {}};
    auto ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    for (auto rank : m.ranks) {
      auto f = failed.find(rank);
      if (f != failed.end()) r.results.push_back({rank, f->second.first, f->second.second, 0, ns});
      else r.results.push_back({rank, 0, "", rank == 0 ? rank0_bytes : 0, ns});
    }
    for (const auto& [rank, why] : failed)
      log(Severity::warning, "agent.mpi", {m.job, rank, m.generation}, std::string(proto::name(m.phase)) + " failed: " + why.second);
    link_.reply(epoch, id, r);
  };
  using Failed = std::map<std::uint32_t, std::pair<std::uint16_t, std::string>>;
  log(Severity::info, "agent.mpi", {m.job, {}, m.round_id ? std::optional<std::uint64_t>(m.generation) : std::nullopt},
      phase + (m.round_id ? " round " + std::to_string(m.round_id) : std::string(" (end the job)")));

  if (m.round_id == 0 && m.phase == proto::RoundPhase::stop) {
    if (run && !run->ended) ::kill(run->launcher, SIGTERM);
    return answer({}, 0);
  }
  bool live = run && !run->ended;
  if (!live) {
    if (m.phase == proto::RoundPhase::abort || m.phase == proto::RoundPhase::stop ||
        m.phase == proto::RoundPhase::commit)
      return answer({}, 0);
    return answer(Failed{{0, {kNotFound, "the MPI launcher of job " + m.job + " does not run on node " + node_}}}, 0);
  }
  switch (m.phase) {
    case proto::RoundPhase::prepare: {
      if (!run->rank0)
        return answer(Failed{{0, {kUnsupported, "rank 0's proxy of job " + m.job + " is not connected to node " + node_ +
                                                    " (the ranks are still starting, or it ended)"}}},
                      0);
      auto made = make_dirs_owned(m.generation_dir, run->m.uid, run->m.gid);
      for (auto rank : m.ranks)
        if (made) made = make_dirs_owned(m.generation_dir + "/rank-" + std::to_string(rank), run->m.uid, run->m.gid);
      if (!made) return answer(Failed{{0, {proto::to_wire(made.error().code()), made.error().message()}}}, 0);
      return answer({}, 0);
    }
    case proto::RoundPhase::quiesce: {
      run->round = std::to_string(++run->rounds);
      run->dumped = false;
      run->bytes = 0;
      // The proxies give the round up at their own deadline, before ours: the user's
      // `ferry checkpoint --timeout` when the coordinator sent one, else 80 % of ours.
      auto proxy_ms = m.round_timeout_ms ? static_cast<long long>(m.round_timeout_ms)
                                         : std::max<long long>(1000, deadline.count() * 8 / 10);
      send_line(run, "checkpoint " + std::to_string(m.generation) + " " + m.generation_dir + " " +
                         std::to_string(proxy_ms) + " " + run->round);
      return await_line(run, deadline, [this, run, answer, m](const std::string& line) {
        std::istringstream words(line);
        std::string kind, round;
        words >> kind >> round;
        if (kind == "dumped") {
          unsigned long long failed = 0, image = 0, memory = 0;
          words >> failed >> image >> memory;
          std::string why;
          std::getline(words >> std::ws, why);
          run->dumped = true;
          run->bytes = image;
          if (failed == 0) return answer({}, image);
          std::uint32_t rank = 0;
          std::sscanf(why.c_str(), "rank %u", &rank);
          return answer(Failed{{rank, {kInternal, std::to_string(failed) + " rank(s) could not be checkpointed" +
                                                      (why.empty() ? std::string() : " (" + why + ")")}}},
                        0);
        }
        if (kind == "timeout") {
          std::string what, ms, ranks;
          words >> what >> ms >> ranks;
          run->round.clear();
          Failed f;
          std::istringstream list(ranks);
          for (std::string r; std::getline(list, r, ',');)
            if (!r.empty() && r != "-")
              f[static_cast<std::uint32_t>(std::stoul(r))] = {
                  kTimeout, "the " + what + " did not complete within " + ms + " ms: rank " + r + " did not answer"};
          if (f.empty()) f[0] = {kTimeout, "the " + what + " was cancelled"};
          return answer(f, 0);
        }
        if (kind == "failed") {
          std::string why;
          std::getline(words >> std::ws, why);
          run->round.clear();
          return answer(Failed{{0, {kUnsupported, why}}}, 0);
        }
        // No answer: rank 0 is stopped, its node hangs, or the job ended.
        send_line(run, "cancel " + run->round);
        run->round.clear();
        return answer(Failed{{0, {kTimeout, run->ended ? "the MPI job ended during the checkpoint"
                                                        : "no answer from the proxy of rank 0 on node " + node_}}},
                      0);
      });
    }
    case proto::RoundPhase::dump:
      if (!run->dumped) return answer(Failed{{0, {kInternal, "the proxies reported no dump"}}}, 0);
      return answer({}, run->bytes);
    case proto::RoundPhase::commit:
      return answer({}, 0);
    case proto::RoundPhase::resume:
    case proto::RoundPhase::stop:
    case proto::RoundPhase::abort: {
      if (run->round.empty()) return answer({}, 0);
      std::string verb = m.phase == proto::RoundPhase::resume ? "resume"
                         : m.phase == proto::RoundPhase::stop ? "stop"
                         : run->dumped                        ? "abort"
                                                              : "cancel";
      send_line(run, verb + " " + run->round);
      if (verb == "cancel") {
        run->round.clear();
        return answer({}, 0);
      }
      return await_line(run, deadline, [run, answer, verb](const std::string& line) {
        run->round.clear();
        if (line.rfind("done ", 0) == 0 || verb != "resume") return answer({}, 0);
        return answer(Failed{{0, {kTimeout, "rank 0's proxy did not confirm the " + verb}}}, 0);
      });
    }
  }
}

}  // namespace ferry::agent
