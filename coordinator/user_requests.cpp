// SPDX-License-Identifier: Apache-2.0
// Coordinator: requests of the `ferry` CLI (LAUNCH_JOB, CHECKPOINT, RESTART, WAIT, STATUS,
// DELETE_JOB). Each is authenticated by MUNGE or with the secret of the uid it claims; a user may act
// only on jobs whose owner is that uid, root on every job (permission, code 13, otherwise).
#include <pwd.h>
#include <unistd.h>

#include <algorithm>

#include "coordinator.hpp"
#include "ferry/proto/munge_auth.hpp"
#include "ferry/proto/status.hpp"
#include "log.hpp"
#include "status_report.hpp"

namespace ferry::coord {

using proto::MsgType;

namespace {

std::uint16_t wire(const Error& e) { return proto::to_wire(e.code()); }

// Reply types of the user requests, for answering one with an error code.
template <class F>
void with_error_reply(MsgType t, F&& f) {
  switch (t) {
    case MsgType::launch_job:
    case MsgType::launch_mpi_job: return f(proto::LaunchJobReply{});
    case MsgType::checkpoint: return f(proto::CheckpointReply{});
    case MsgType::restart: return f(proto::RestartReply{});
    case MsgType::wait: return f(proto::WaitReply{});
    case MsgType::status: return f(proto::StatusReply{});
    default: return f(proto::Ack{});
  }
}

}  // namespace

void Coordinator::on_user_request(const std::shared_ptr<Session>& s, const proto::Frame& f, proto::AnyMessage& msg) {
  ReplyTo to{s, f.env.request_id};
  std::uint32_t uid = f.env.auth.uid;
  Result<void> ok = [&]() -> Result<void> {
    // MUNGE proves the uid itself (where munged runs); otherwise the uid's own secret.
    if (f.env.auth.scheme == proto::AuthScheme::munge) return proto::munge_verify(f, proto::realtime_ns());
    auto path = uid == ::getuid() && cfg_.own_user_secret ? Result<std::string>(*cfg_.own_user_secret)
                                                           : proto::user_secret_path_for(uid, cfg_.user_secret_dir);
    if (!path) return fail(path.error());
    auto secret = proto::read_secret(*path);
    if (!secret)
      return fail(Error(make_error_code(proto::perr::auth_failed), "no usable secret for uid " + std::to_string(uid) + " (" + secret.error().message() + ")"));
    return auth_.verify(f, *secret, proto::realtime_ns());
  }();
  if (!ok) {
    log(Severity::warning, "coord.session", {}, "refuse " + std::string(proto::name(f.env.type)) + " from " +
                                                    s->peer() + " (uid " + std::to_string(uid) + "): " + ok.error().message());
    with_error_reply(f.env.type, [&](auto r) {
      r.code = static_cast<std::uint16_t>(proto::perr::auth_failed);
      r.message = "authentication failed: " + ok.error().message();
      reply(to, r);
    });
    return s->close("authentication failed");
  }
  if (auto* m = std::get_if<proto::LaunchJob>(&msg)) on_launch_job(to, uid, *m);
  else if (auto* m = std::get_if<proto::LaunchMpiJob>(&msg)) on_launch_mpi_job(to, uid, *m);
  else if (auto* m = std::get_if<proto::Checkpoint>(&msg)) on_checkpoint(to, uid, *m);
  else if (auto* m = std::get_if<proto::Restart>(&msg)) on_restart(to, uid, *m);
  else if (auto* m = std::get_if<proto::Wait>(&msg)) on_wait(to, uid, *m);
  else if (auto* m = std::get_if<proto::Status>(&msg)) on_status(to, uid, *m);
  else if (auto* m = std::get_if<proto::DeleteJob>(&msg)) on_delete(to, uid, *m);
}

Result<Coordinator::Job*> Coordinator::job_for(const std::string& id_or_name, std::uint32_t uid) {
  auto row = db_.job(id_or_name, uid == 0 ? std::nullopt : std::optional<std::uint32_t>(uid));
  if (!row && uid != 0) row = db_.job(id_or_name);  // exists, but is it theirs?
  if (!row) return fail(row.error());
  if (uid != 0 && row->owner_uid != uid)
    return fail(errc::permission, "job " + row->id + " belongs to uid " + std::to_string(row->owner_uid));
  auto [it, inserted] = jobs_.try_emplace(row->id);
  if (inserted) it->second.row = *row;
  return &it->second;
}

void Coordinator::on_launch_job(const ReplyTo& to, std::uint32_t uid, const proto::LaunchJob& m) {
  auto refuse = [&](std::uint16_t code, const std::string& why) {
    log(Severity::warning, "coord.launch", {}, "refuse launch: " + why);
    reply(to, proto::LaunchJobReply{code, why, ""});
  };
  if (m.argv.empty()) return refuse(static_cast<std::uint16_t>(errc::protocol), "no program given");
  if (m.ntasks == 0) return refuse(static_cast<std::uint16_t>(errc::protocol), "ntasks must be at least 1");
  std::vector<std::string> nodes = m.nodes.empty() ? agents_.alive_nodes() : m.nodes;
  if (nodes.empty()) return refuse(static_cast<std::uint16_t>(proto::perr::agent_lost), "no agent is registered");
  for (const auto& n : nodes)
    if (!agents_.alive(n))
      return refuse(static_cast<std::uint16_t>(proto::perr::agent_lost), "node " + n + " has no registered agent");

  JobRow row;
  row.name = m.name;
  row.owner_uid = uid;
  const passwd* pw = ::getpwuid(uid);
  row.owner_gid = pw ? pw->pw_gid : uid;
  row.argv = m.argv;
  row.cwd = m.cwd;
  row.ntasks = m.ntasks;
  for (std::uint32_t r = 0; r < m.ntasks; ++r) row.nodes.push_back(nodes[r % nodes.size()]);
  row.state = "running";
  row.interval_s = m.interval_s;
  row.keep = m.keep;
  row.created_ns = proto::realtime_ns();
  if (!m.name.empty()) {
    if (auto old = db_.job(m.name, uid); old && old->owner_uid == uid) {
      if (old->state == "running") return refuse(static_cast<std::uint16_t>(errc::busy), "job name '" + m.name + "' is used by running job " + old->id);
    }
  }
  auto id = store_.create_job(row);
  if (!id) return refuse(wire(id.error()), "create job: " + id.error().message());
  row.id = *id;
  auto created = db_.create_job(row);
  if (!created) {
    store_.remove_job(*id);
    return refuse(wire(created.error()), created.error().message());
  }
  auto rid = db_.create_restart(row.id, 0, row.created_ns);
  if (!rid) return refuse(wire(rid.error()), rid.error().message());

  std::map<std::uint32_t, std::string> placement;
  for (std::uint32_t r = 0; r < row.ntasks; ++r) placement[r] = row.nodes[r];
  RestartRow rec{.restart_id = *rid, .job = row.id, .generation = 0, .phase = proto::RestartPhase::place};
  Job& job = jobs_[row.id];
  job.row = row;
  job.inc = std::make_unique<Incarnation>(db_, rec, placement);
  log(Severity::info, "coord.launch", {row.id, "", {}, {}},
      "job launched: " + std::to_string(row.ntasks) + " ranks on " + std::to_string(job.inc->nodes().size()) +
          " nodes, record " + std::to_string(*rid));

  std::vector<std::string> env;
  for (const auto& kv : m.env)
    if (kv.rfind("FERRY_JOB=", 0) != 0 && kv.rfind("FERRY_NTASKS=", 0) != 0 && kv.rfind("FERRY_RANK=", 0) != 0 &&
        kv.rfind("FERRY_CONTROL=", 0) != 0)
      env.push_back(kv);
  env.push_back("FERRY_JOB=" + row.id);
  env.push_back("FERRY_NTASKS=" + std::to_string(row.ntasks));
  for (const auto& node : job.inc->nodes()) {
    send_to_agent(node, proto::LaunchRanks{row.id, row.owner_uid, row.owner_gid, row.ntasks, job.inc->ranks_on(node),
                                           row.argv, row.cwd, env});
  }
  reply(to, proto::LaunchJobReply{0, "", row.id});
  arm_interval(job);
}

void Coordinator::on_checkpoint(const ReplyTo& to, std::uint32_t uid, const proto::Checkpoint& m) {
  auto refuse = [&](std::uint16_t code, const std::string& why) {
    proto::CheckpointReply r;
    r.code = code;
    r.message = why;
    reply(to, r);
  };
  auto job = job_for(m.job, uid);
  if (!job) return refuse(wire(job.error()), job.error().message());
  Job& j = **job;
  if (!j.inc || j.inc->final() || !j.inc->all_running())
    return refuse(static_cast<std::uint16_t>(errc::not_found), "job " + j.row.id + " is not running (state: " + j.row.state + ")");
  if (j.round)
    return refuse(static_cast<std::uint16_t>(errc::busy), "job " + j.row.id + " has a checkpoint in progress");
  if (j.ending)
    return refuse(static_cast<std::uint16_t>(errc::not_found), "job " + j.row.id + " is ending (" + *j.ending + ")");
  if (auto n = j.inc->ranks_ended())
    return refuse(static_cast<std::uint16_t>(errc::not_found), "job " + j.row.id + " is ending: " + std::to_string(n) +
                                                                   " of its ranks already ended");
  if (m.timeout_ms > 0 && !j.mpi)
    return refuse(static_cast<std::uint16_t>(errc::unsupported),
                  "--timeout applies to MPI jobs (ferry mpirun); job " + j.row.id + " is not one (it continues)");
  if (auto r = start_round(j, m.stop ? RoundMode::stop : RoundMode::resume, to, m.timeout_ms); !r)
    return refuse(wire(r.error()), r.error().message());
}

Result<std::uint64_t> Coordinator::begin_incarnation(Job& job, std::uint64_t gen,
                                                     const std::map<std::uint32_t, std::string>& placement) {
  FERRY_TRY(rid, db_.create_restart(job.row.id, gen, proto::realtime_ns()));
  std::vector<std::string> per_rank;
  for (const auto& [r, n] : placement) per_rank.push_back(n);
  job.row.nodes = per_rank;
  job.row.state = "running";
  job.stop_committed = false;
  job.stopped_generation.reset();
  job.ending.reset();
  (void)db_.set_job_nodes(job.row.id, per_rank);
  (void)db_.set_job_state(job.row.id, "running");
  (void)store_.save_job_state(job.row, "running");
  RestartRow rec{.restart_id = rid, .job = job.row.id, .generation = gen, .phase = proto::RestartPhase::place};
  job.inc = std::make_unique<Incarnation>(db_, rec, placement);
  return rid;
}

void Coordinator::on_restart(const ReplyTo& to, std::uint32_t uid, const proto::Restart& m) {
  auto refuse = [&](std::uint16_t code, const std::string& why) { reply(to, proto::RestartReply{code, why, 0, 0}); };
  auto jr = job_for(m.job, uid);
  if (!jr) return refuse(wire(jr.error()), jr.error().message());
  Job& job = **jr;
  if ((job.inc && !job.inc->final()) || job.round)
    return refuse(static_cast<std::uint16_t>(errc::busy), "job " + job.row.id + " is still running; stop it first with 'ferry checkpoint " + job.row.id + " --stop'");
  auto gens = db_.generations(job.row.id);
  if (!gens) return refuse(wire(gens.error()), gens.error().message());
  std::uint64_t gen = m.generation;
  if (gen == 0 && !gens->empty()) gen = gens->back().number;
  if (gen == 0 || std::none_of(gens->begin(), gens->end(), [&](const GenerationRow& g) { return g.number == gen; }))
    return refuse(static_cast<std::uint16_t>(errc::not_found),
                  gen == 0 ? "job " + job.row.id + " has no committed generation"
                           : "job " + job.row.id + " has no committed generation " + std::to_string(gen));

  if (job.mpi || ::access((store_.job_dir(job.row.id) + "/mpi-launch.json").c_str(), F_OK) == 0) {
    job.mpi = true;
    return restart_mpi_job(to, job, m, gen);
  }
  // Placement: explicit entries, else rank r on nodes[r % n] (the job's nodes by default).
  std::vector<std::string> nodes = m.nodes;
  if (nodes.empty())
    for (const auto& n : job.row.nodes)
      if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
  std::map<std::uint32_t, std::string> placement;
  for (std::uint32_t r = 0; r < job.row.ntasks; ++r) placement[r] = nodes.empty() ? "" : nodes[r % nodes.size()];
  for (const auto& p : m.placement)
    if (p.rank < job.row.ntasks) placement[p.rank] = p.node;

  auto rid = begin_incarnation(job, gen, placement);
  if (!rid) return refuse(wire(rid.error()), rid.error().message());
  log(Severity::info, "coord.restart", {job.row.id, "", {}, gen}, "restart " + std::to_string(*rid) + " begins");
  if (m.detach) reply(to, proto::RestartReply{0, "", *rid, gen});
  else restart_replies_[*rid] = to;

  // PLACE: every rank on a node with a live agent.
  for (const auto& [rank, node] : placement)
    if (node.empty() || !agents_.alive(node))
      if (job.inc->on_rank_failed(rank, proto::RestartPhase::place,
                                  node.empty() ? "no node given" : "node " + node + " has no registered agent"))
        return on_incarnation_final(job);
  // VALIDATE (the coordinator's part): the job manifest and every rank's manifest and images.
  std::uint32_t bad_rank = 0;
  if (auto ok = store_.check_restorable(job.row, gen, &bad_rank); !ok)
    if (job.inc->on_rank_failed(bad_rank, proto::RestartPhase::validate, ok.error().message()))
      return on_incarnation_final(job);
  job.inc->on_phase(proto::RestartPhase::validate);
  std::string dir = store_.generation_dir(job.row.id, gen);
  for (const auto& node : job.inc->nodes())
    send_to_agent(node, proto::RestoreRanks{job.row.id, gen, *rid, job.row.owner_uid, job.row.owner_gid,
                                            job.row.ntasks, dir, job.inc->ranks_on(node)});
  arm_interval(job);
}

void Coordinator::on_wait(const ReplyTo& to, std::uint32_t uid, const proto::Wait& m) {
  auto rec = db_.restart(m.restart_id);
  if (!rec) return reply(to, proto::WaitReply{wire(rec.error()), rec.error().message(), {}});
  if (uid != 0) {
    auto row = db_.job(rec->job);
    if (!row || row->owner_uid != uid)
      return reply(to, proto::WaitReply{static_cast<std::uint16_t>(errc::permission),
                                        "restart " + std::to_string(m.restart_id) + " is not one of your jobs'", {}});
  }
  auto live = jobs_.find(rec->job);
  proto::RestartRecordWire w = (live != jobs_.end() && live->second.inc && live->second.inc->id() == m.restart_id)
                                   ? live->second.inc->record()
                                   : to_wire(*rec);
  if (w.outcome != proto::Outcome::running) return reply(to, proto::WaitReply{0, "", w});
  Waiter waiter{to, nullptr};
  if (m.timeout_ms > 0) {
    waiter.timer = std::make_unique<boost::asio::steady_timer>(io_, std::chrono::milliseconds(m.timeout_ms));
  }
  auto it = waiters_.emplace(m.restart_id, std::move(waiter));
  if (it->second.timer) {
    auto* timer = it->second.timer.get();
    timer->async_wait([this, timer, id = m.restart_id](boost::system::error_code ec) {
      if (ec) return;
      auto [b, e] = waiters_.equal_range(id);
      for (auto w = b; w != e; ++w) {
        if (w->second.timer.get() != timer) continue;
        auto rec = db_.restart(id);
        reply(w->second.to, proto::WaitReply{static_cast<std::uint16_t>(proto::perr::timeout), "still running",
                                             rec ? to_wire(*rec) : proto::RestartRecordWire{}});
        waiters_.erase(w);
        return;
      }
    });
  }
}

void Coordinator::answer_waiters(std::uint64_t restart_id, const proto::RestartRecordWire& rec) {
  auto [b, e] = waiters_.equal_range(restart_id);
  for (auto w = b; w != e; ++w) reply(w->second.to, proto::WaitReply{0, "", rec});
  waiters_.erase(b, e);  // their timers are destroyed (cancelled) with them
}

void Coordinator::on_status(const ReplyTo& to, std::uint32_t uid, const proto::Status& m) {
  StatusInputs in{db_, agents_};
  for (const auto& [id, job] : jobs_)
    if (job.round) in.rounds[id] = job.round.get();
  reply(to, build_status(in, m.job, uid));
}

void Coordinator::on_delete(const ReplyTo& to, std::uint32_t uid, const proto::DeleteJob& m) {
  auto job = job_for(m.job, uid);
  if (!job) return reply(to, proto::Ack{wire(job.error()), job.error().message()});
  Job& j = **job;
  if ((j.inc && !j.inc->final()) || j.round)
    return reply(to, proto::Ack{static_cast<std::uint16_t>(proto::perr::bad_state), "job " + j.row.id + " is running"});
  std::string id = j.row.id;
  if (auto r = db_.delete_job(id); !r) return reply(to, proto::Ack{wire(r.error()), r.error().message()});
  store_.remove_job(id);
  if (j.interval) j.interval->cancel();
  jobs_.erase(id);
  log(Severity::info, "coord.job", {id, "", {}, {}}, "job deleted");
  reply(to, proto::Ack{});
}

}  // namespace ferry::coord
