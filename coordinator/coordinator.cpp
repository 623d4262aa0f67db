// SPDX-License-Identifier: Apache-2.0
// Coordinator: authentication of every frame and the agents' side of the protocol (see
// coordinator.hpp). Users' requests are in user_requests.cpp, rounds in rounds.cpp, start-up
// recovery in recovery.cpp.
//
// Authentication (PROTOCOL.md): agent messages carry an HMAC with the cluster secret; the
// three agent replies (LAUNCH_RESULT, ROUND_REPLY, RESTORE_RESULT) may also come with scheme
// none on a connection whose AGENT_REGISTER verified. User messages carry an HMAC with the
// secret of the uid they claim. A frame that fails is answered with code 100
// (auth_failed) and its connection is closed; other connections are unaffected.
#include "coordinator.hpp"

#include "ferry/proto/status.hpp"
#include "log.hpp"

namespace ferry::coord {

using proto::MsgType;

namespace {

bool is_agent_type(MsgType t) {
  switch (t) {
    case MsgType::agent_register:
    case MsgType::heartbeat:
    case MsgType::rank_exited:
    case MsgType::mpi_run_ended:
    case MsgType::launch_result:
    case MsgType::round_reply:
    case MsgType::restore_result:
    case MsgType::ack:
      return true;
    default:
      return false;
  }
}

bool is_agent_reply(MsgType t) {
  return t == MsgType::launch_result || t == MsgType::round_reply || t == MsgType::restore_result ||
         t == MsgType::ack;
}

bool valid_node_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

}  // namespace

Coordinator::Coordinator(boost::asio::io_context& io, CoordinatorConfig cfg, StateDb db, GenerationStore store)
    : io_(io),
      cfg_(std::move(cfg)),
      db_(std::move(db)),
      store_(std::move(store)),
      agents_(
          io, cfg_.lost_after, [this](const std::string& node) { on_agent_joined(node); },
          [this](const std::string& node, const std::string& why) { on_agent_lost(node, why); }) {}

bool Coordinator::busy() const {
  if (!waiters_.empty() || !restart_replies_.empty()) return true;
  for (const auto& [id, job] : jobs_)
    if (job.round || (job.inc && !job.inc->final())) return true;
  return false;
}

void Coordinator::warn_unsent(const std::string& job, const std::string& node, std::string_view what) {
  log(Severity::warning, "coord.agent", {job, node, {}, {}}, "cannot send " + std::string(what) + ": agent not connected");
}

// Everything the coordinator sends an agent carries the cluster secret's HMAC, replies too:
// an agent accepts nothing else from "its coordinator".
template <class M>
proto::Bytes Coordinator::signed_for_agent(const M& msg, std::uint64_t request_id) {
  return proto::encode_signed(msg, request_id, 0, cfg_.cluster_secret);
}

void Coordinator::on_frame(const std::shared_ptr<Session>& s, const proto::Frame& f, proto::AnyMessage&& msg) {
  if (is_agent_type(f.env.type)) return on_agent_message(s, f, msg);
  switch (f.env.type) {
    case MsgType::launch_job:
    case MsgType::launch_mpi_job:
    case MsgType::checkpoint:
    case MsgType::restart:
    case MsgType::wait:
    case MsgType::status:
    case MsgType::delete_job:
      return on_user_request(s, f, msg);
    default:
      log(Severity::warning, "coord.session", {}, "refuse " + std::string(proto::name(f.env.type)) + " from " + s->peer());
      s->send(proto::encode(proto::Ack{static_cast<std::uint16_t>(proto::perr::unknown_message),
                                       "the coordinator does not accept " + std::string(proto::name(f.env.type))},
                            f.env.request_id));
      s->close("unexpected message");
  }
}

void Coordinator::on_closed(const std::shared_ptr<Session>& s, const std::string& why) {
  log(Severity::debug, "coord.session", {"", s->node, {}, {}}, "connection " + s->peer() + " closed: " + why);
  agents_.on_closed(s);
}

void Coordinator::on_agent_message(const std::shared_ptr<Session>& s, const proto::Frame& f, proto::AnyMessage& msg) {
  bool none_ok = f.env.auth.scheme == proto::AuthScheme::none && !s->node.empty() && is_agent_reply(f.env.type);
  if (!none_ok) {
    auto ok = auth_.verify(f, cfg_.cluster_secret, proto::realtime_ns());
    if (!ok || f.env.auth.uid != 0) {
      std::string why = ok ? "agents authenticate as uid 0" : ok.error().message();
      log(Severity::warning, "coord.session", {"", s->node, {}, {}},
          "refuse " + std::string(proto::name(f.env.type)) + " from " + s->peer() + ": " + why);
      std::uint16_t code = static_cast<std::uint16_t>(proto::perr::auth_failed);
      if (f.env.type == MsgType::agent_register)
        s->send(signed_for_agent(proto::AgentRegisterReply{code, why, 0, 0, 0}, f.env.request_id));
      else
        s->send(signed_for_agent(proto::Ack{code, why}, f.env.request_id));
      return s->close("authentication failed");
    }
  }
  if (auto* reg = std::get_if<proto::AgentRegister>(&msg)) {
    if (!valid_node_name(reg->node)) {
      s->send(signed_for_agent(proto::AgentRegisterReply{static_cast<std::uint16_t>(errc::protocol),
                                                      "node name '" + reg->node + "' is not valid", 0, 0, 0},
                            f.env.request_id));
      return s->close("bad node name");
    }
    agent_pids_[reg->node] = reg->agent_pid;
    std::uint64_t sid = agents_.on_register(reg->node, s);
    mpi_hosts_[reg->node] = reg->hostname;
    (void)db_.node_heartbeat(reg->node, proto::realtime_ns());
    log(Severity::info, "coord.agent", {"", reg->node, {}, {}},
        "agent joined from " + s->peer() + " (pid " + std::to_string(reg->agent_pid) + ", " + reg->build + ")");
    s->send(signed_for_agent(proto::AgentRegisterReply{0, "", sid, static_cast<std::uint32_t>(cfg_.heartbeat.count()),
                                                    static_cast<std::uint32_t>(cfg_.lost_after.count())},
                          f.env.request_id));
    return;
  }
  if (s->node.empty()) {
    s->send(signed_for_agent(proto::Ack{static_cast<std::uint16_t>(proto::perr::not_registered), "register first"},
                          f.env.request_id));
    return s->close("agent message before AGENT_REGISTER");
  }
  const std::string node = s->node;
  agents_.on_activity(node);
  if (auto* hb = std::get_if<proto::Heartbeat>(&msg)) {
    bool known = agents_.on_heartbeat(node, hb->session_id);
    s->send(signed_for_agent(proto::Ack{known ? proto::kWireOk : static_cast<std::uint16_t>(proto::perr::not_registered),
                                     known ? "" : "unknown session; register again"},
                          f.env.request_id));
  } else if (auto* lr = std::get_if<proto::LaunchResult>(&msg)) {
    on_launch_result(node, *lr);
  } else if (auto* rr = std::get_if<proto::RestoreResult>(&msg)) {
    on_restore_result(node, *rr);
  } else if (auto* ex = std::get_if<proto::RankExited>(&msg)) {
    s->send(signed_for_agent(proto::Ack{}, f.env.request_id));
    on_rank_exited(node, *ex);
  } else if (auto* me = std::get_if<proto::MpiRunEnded>(&msg)) {
    s->send(signed_for_agent(proto::Ack{}, f.env.request_id));
    on_mpi_run_ended(node, *me);
  } else if (auto* rp = std::get_if<proto::RoundReply>(&msg)) {
    on_round_reply(node, *rp);
  }
}

void Coordinator::on_agent_joined(const std::string& node) {
  for (auto& [id, job] : jobs_) {
    auto away = job.agents_away.find(node);
    if (away == job.agents_away.end()) continue;
    std::int32_t now = agent_pids_.count(node) ? agent_pids_[node] : 0;
    if (node == job.head && away->second.agent_pid != 0 && now != away->second.agent_pid) {
      // Another agent process: the run (mpirun, the old agent's child) ended with the old one.
      away->second.why += "; a new agent (pid " + std::to_string(now) + ") replaced it (pid " +
                          std::to_string(away->second.agent_pid) + ")";
      away->second.timer->cancel();
      job.ending = "node " + node + ": the agent that ran mpirun is gone";
      if (!job.round) end_half_dead_job(job);  // else once the round has aborted
      continue;
    }
    job.agents_away.erase(away);
    log(Severity::info, "coord.job", {id, node, {}, {}}, "the agent of node " + node + " is back: the MPI job goes on");
  }
  auto it = pending_aborts_.find(node);
  if (it == pending_aborts_.end()) return;
  for (const auto& step : it->second) {
    log(Severity::info, "coord.recovery", {step.job, node, {}, step.generation}, "send abort of the round a previous coordinator left");
    send_to_agent(node, step);
  }
  pending_aborts_.erase(it);
}

void Coordinator::on_agent_lost(const std::string& node, const std::string& why) {
  log(Severity::warning, "coord.agent", {"", node, {}, {}}, "agent lost: " + why);
  (void)db_.node_heartbeat(node, agents_.last_seen_ns(node) ? agents_.last_seen_ns(node) : proto::realtime_ns());
  std::vector<std::string> ids;
  for (auto& [id, job] : jobs_) ids.push_back(id);
  for (const auto& id : ids) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    Job& job = it->second;
    if (job.round) job.round->on_agent_lost(node, "agent lost (" + why + "): node " + node + " may be gone");
    if (!job.inc || job.inc->final() || !job.inc->nodes().count(node)) continue;
    if (job.mpi) {  // head or not: a connection may come back (mpi_requests.cpp)
      on_mpi_agent_away(job, node, why);
      continue;
    }
    bool was_running = job.inc->all_running();
    if (job.inc->on_agent_lost(node)) {
      on_incarnation_final(job);
      continue;
    }
    // The job ran on that node: its ranks there count as killed, and a job missing ranks
    // cannot go on (its other ranks would wait for them forever). End it: the surviving
    // ranks are stopped, the record becomes signaled 9 "agent lost", and the job can be
    // restarted from its newest generation on the nodes that remain.
    if (was_running && !job.ending) {
      job.ending = "node " + node + " lost";
      if (!job.round) end_half_dead_job(job);  // else once the round has aborted
    }
  }
}

void Coordinator::end_half_dead_job(Job& job) {
  if (!job.inc || job.inc->final()) return;
  if (job.mpi && job.agents_away.count(job.head)) return end_mpi_job_head_lost(job);
  // An MPI job's ranks are all mpirun's, which runs on the head node.
  for (const auto& node : job.mpi ? std::set<std::string>{job.head} : job.inc->nodes()) {
    if (!agents_.alive(node)) continue;
    proto::RoundStep stop{.job = job.row.id, .generation = job.inc->generation(), .round_id = 0,
                          .phase = proto::RoundPhase::stop, .ranks = job.inc->ranks_on(node),
                          .generation_dir = "", .deadline_ms = static_cast<std::uint32_t>(cfg_.finish_timeout.count())};
    log(Severity::warning, "coord.job", {job.row.id, node, {}, {}}, "stop the surviving ranks: " + *job.ending);
    send_to_agent(node, stop);
  }
}

void Coordinator::on_launch_result(const std::string& node, const proto::LaunchResult& m) {
  auto it = jobs_.find(m.job);
  if (it == jobs_.end() || !it->second.inc || !it->second.inc->is_launch()) return;
  Job& job = it->second;
  bool final = false;
  for (const auto& r : m.ranks) {
    if (r.code == proto::kWireOk) {
      log(Severity::info, "coord.launch", {m.job, node, r.rank, {}}, "rank started (pid " + std::to_string(r.pid) + ")");
      final |= job.inc->on_rank_running(r.rank);
    } else {
      log(Severity::error, "coord.launch", {m.job, node, r.rank, {}}, "rank did not start: " + r.message);
      final |= job.inc->on_rank_failed(r.rank, proto::RestartPhase::restore, "launch: " + r.message);
    }
  }
  if (final) on_incarnation_final(job);
}

void Coordinator::on_restore_result(const std::string& node, const proto::RestoreResult& m) {
  auto it = jobs_.find(m.job);
  if (it == jobs_.end() || !it->second.inc || it->second.inc->id() != m.restart_id) return;
  Job& job = it->second;
  bool final = false;
  for (const auto& r : m.ranks) {
    if (r.code == proto::kWireOk) {
      log(Severity::info, "coord.restart", {m.job, node, r.rank, job.inc->generation()},
          "rank restored (pid " + std::to_string(r.pid) + ")");
      final |= job.inc->on_rank_running(r.rank);
    } else {
      log(Severity::error, "coord.restart", {m.job, node, r.rank, job.inc->generation()},
          std::string(proto::name(r.phase)) + " failed: " + r.message);
      final |= job.inc->on_rank_failed(r.rank, r.phase, r.message);
    }
  }
  if (final) return on_incarnation_final(job);
  if (job.inc->all_running()) {
    auto rr = restart_replies_.find(m.restart_id);
    if (rr != restart_replies_.end()) {
      reply(rr->second, proto::RestartReply{0, "", m.restart_id, job.inc->generation()});
      restart_replies_.erase(rr);
    }
  }
}

void Coordinator::on_rank_exited(const std::string& node, const proto::RankExited& m) {
  auto it = jobs_.find(m.job);
  LogCtx ctx{m.job, node, m.rank, {}};
  if (it == jobs_.end() || !it->second.inc) {
    log(Severity::debug, "coord.exit", ctx, "exit of a rank of no running job: ignored");
    return;
  }
  Job& job = it->second;
  bool ours = m.restart_id == 0 ? job.inc->is_launch() : job.inc->id() == m.restart_id;
  if (!ours) {
    log(Severity::debug, "coord.exit", ctx, "exit of an earlier incarnation: ignored");
    return;
  }
  log(Severity::info, "coord.exit", ctx,
      m.signal ? "rank killed by signal " + std::to_string(*m.signal)
               : "rank exited with status " + std::to_string(m.exit_status.value_or(-1)));
  if (job.inc->on_rank_exited(m.rank, m.exit_status, m.signal, m.time_ns)) on_incarnation_final(job);
}

void Coordinator::on_round_reply(const std::string& node, const proto::RoundReply& m) {
  auto it = jobs_.find(m.job);
  if (it == jobs_.end() || !it->second.round) {
    if (m.phase == proto::RoundPhase::abort) {
      // The abort of a round a previous coordinator left (recovery.cpp): that node's ranks
      // have stopped writing now, so what they wrote after recover() removed the partial
      // generation (a dump still running then) goes too.
      store_.discard(store_.partial_dir(m.job, m.generation));
      log(Severity::debug, "coord.recovery", {m.job, node, {}, m.generation}, "abort done: partial generation removed");
      return;
    }
    log(Severity::debug, "coord.round", {m.job, node, {}, m.generation}, "reply to no round in flight: ignored");
    return;
  }
  it->second.round->on_reply(node, m);
}

void Coordinator::stop_ranks(const Job& job, const std::string& why) {
  for (const auto& node : job.mpi ? std::set<std::string>{job.head} : job.inc->nodes()) {
    proto::RoundStep stop{.job = job.row.id, .generation = job.inc->generation(), .round_id = 0,
                          .phase = proto::RoundPhase::stop, .ranks = job.inc->ranks_on(node),
                          .generation_dir = "", .deadline_ms = static_cast<std::uint32_t>(cfg_.finish_timeout.count())};
    log(Severity::info, "coord.restart", {job.row.id, node, {}, {}}, "stop the ranks: " + why);
    send_to_agent(node, stop);
  }
}

void Coordinator::on_incarnation_final(Job& job) {
  const auto rec = job.inc->record();
  std::string state = "exited";
  if (rec.outcome == proto::Outcome::restart_failed) state = "failed";
  else if (job.stop_committed) state = "stopped";
  job.row.state = state;
  log(rec.outcome == proto::Outcome::restart_failed ? Severity::error : Severity::info, "coord.job",
      {job.row.id, rec.node.value_or(""), rec.rank, {}},
      "job " + state + " (" + std::string(proto::name(rec.outcome)) +
          (rec.exit_status ? " status " + std::to_string(*rec.exit_status) : "") +
          (rec.signal ? " signal " + std::to_string(*rec.signal) : "") + (rec.reason ? ": " + *rec.reason : "") + ")");
  if (auto r = db_.set_job_state(job.row.id, state); !r)
    log(Severity::error, "coord.job", {job.row.id, "", {}, {}}, "store job state: " + r.error().message());
  (void)store_.save_job_state(job.row, state);
  if (job.interval) job.interval->cancel();
  job.agents_away.clear();
  if (job.round) job.round->cancel("the job ended");
  if (rec.outcome == proto::Outcome::restart_failed) stop_ranks(job, "the restart failed");
  auto rr = restart_replies_.find(rec.restart_id);
  if (rr != restart_replies_.end()) {
    // The record exists either way: the CLI learns the outcome with WAIT.
    reply(rr->second, proto::RestartReply{0, "", rec.restart_id, job.inc->generation()});
    restart_replies_.erase(rr);
  }
  answer_waiters(rec.restart_id, rec);
}

}  // namespace ferry::coord
