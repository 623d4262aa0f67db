// SPDX-License-Identifier: Apache-2.0
// Coordinator: MPI jobs (mpi_jobs.hpp, docs/mpi.md "Through the coordinator"). A launch
// places the ranks in blocks over the nodes, saves what the job was launched with
// (mpi-launch.json) and sends LAUNCH_MPI to the head agent (rank 0's node), which runs mpirun
// and answers for every rank; a restart does the same with `--restore GEN_DIR` on the nodes
// given (any ranks per node). The head agent takes every step of the job's rounds (rounds.cpp)
// and reports the end of the run as MPI_RUN_ENDED, folded here into the record.
//
// Lost agents (docs/mpi.md "A lost node or agent"): the ranks are mpirun's, so the agent of a
// non-head node being lost does not end the job; only if it stays away node_down_after is the
// node counted as down and the job ended. A run that ends with a rank unreported on a node
// whose agent is lost is recorded as that node lost. The head's agent is mpirun's parent
// (mpirun gets SIGTERM when it dies): if it is not back, as the same process, within
// node_down_after, the job is recorded as ended with the head node lost.
#include <pwd.h>
#include <unistd.h>

#include "coordinator.hpp"
#include "ferry/common/fs.hpp"
#include "ferry/proto/status.hpp"
#include "log.hpp"

namespace ferry::coord {

namespace {
std::uint16_t wire(const Error& e) { return proto::to_wire(e.code()); }
constexpr auto kProtocol = static_cast<std::uint16_t>(errc::protocol);
constexpr auto kAgentLost = static_cast<std::uint16_t>(proto::perr::agent_lost);

std::string describe(const std::vector<std::pair<std::string, std::uint32_t>>& blocks) {
  std::string out;
  for (const auto& [n, k] : blocks) out += (out.empty() ? "" : ",") + n + ":" + std::to_string(k);
  return out;
}
}  // namespace

Result<MpiLaunch> Coordinator::load_mpi_launch(const std::string& job) const {
  FERRY_TRY(text, fs::read_file(store_.job_dir(job) + "/mpi-launch.json"));
  return mpi_launch_from_json(text);
}

void Coordinator::send_mpi_launch(Job& job, const MpiLaunch& l,
                                  const std::vector<std::pair<std::string, std::uint32_t>>& blocks,
                                  const std::string& restore_dir) {
  proto::LaunchMpi m;
  m.job = job.row.id;
  m.restart_id = job.inc->is_launch() ? 0 : job.inc->id();
  m.generation = job.inc->generation();
  m.uid = job.row.owner_uid;
  m.gid = job.row.owner_gid;
  m.ntasks = job.row.ntasks;
  m.argv = mpi_command(l, blocks, mpi_hosts_, job.row.ntasks, restore_dir);
  m.cwd = l.cwd;
  for (const auto& kv : l.env)
    if (kv.rfind("FERRY_MPI_", 0) != 0 && kv.rfind("FERRY_JOB=", 0) != 0) m.env.push_back(kv);
  m.env.push_back("FERRY_MPI_STORE=" + store_.root());
  m.env.push_back("FERRY_MPI_JOB=" + job.row.id);
  m.run_dir = store_.job_dir(job.row.id) + "/mpi-runs/" + std::to_string(job.inc->id());
  job.head = blocks.front().first;
  log(Severity::info, "coord.mpi", {job.row.id, job.head, {}, {}},
      "launcher on " + job.head + ": " + std::to_string(job.row.ntasks) + " ranks as " + describe(blocks));
  send_to_agent(job.head, m);
}

void Coordinator::on_launch_mpi_job(const ReplyTo& to, std::uint32_t uid, const proto::LaunchMpiJob& m) {
  auto refuse = [&](std::uint16_t code, const std::string& why) {
    log(Severity::warning, "coord.launch", {}, "refuse MPI launch: " + why);
    reply(to, proto::LaunchJobReply{code, why, ""});
  };
  if (m.program.empty()) return refuse(kProtocol, "no program given");
  if (m.ntasks == 0) return refuse(kProtocol, "-np must be at least 1");
  if (m.proxy.empty()) return refuse(kProtocol, "no ferry-mpi-proxy path given");
  std::vector<std::string> nodes = m.nodes.empty() ? agents_.alive_nodes() : m.nodes;
  if (nodes.empty()) return refuse(kAgentLost, "no agent is registered");
  auto blocks = mpi_blocks(nodes, m.ntasks);
  if (!blocks) return refuse(kProtocol, "--nodes: " + blocks.error().message());
  for (const auto& [n, k] : *blocks)
    if (!agents_.alive(n)) return refuse(kAgentLost, "node " + n + " has no registered agent");
  if (!m.name.empty())
    if (auto old = db_.job(m.name, uid); old && old->owner_uid == uid && old->state == "running")
      return refuse(static_cast<std::uint16_t>(errc::busy), "job name '" + m.name + "' is used by running job " + old->id);

  auto placement = mpi_placement(*blocks);
  JobRow row;
  row.name = m.name;
  row.owner_uid = uid;
  const passwd* pw = ::getpwuid(uid);
  row.owner_gid = pw ? pw->pw_gid : uid;
  row.argv = m.program;
  row.cwd = m.cwd;
  row.ntasks = m.ntasks;
  for (const auto& [r, n] : placement) row.nodes.push_back(n);
  row.state = "running";
  row.interval_s = m.interval_s;
  row.keep = m.keep;
  row.created_ns = proto::realtime_ns();
  auto id = store_.create_job(row);
  if (!id) return refuse(wire(id.error()), "create job: " + id.error().message());
  row.id = *id;
  MpiLaunch l{m.program, m.mpirun_options, m.proxy, m.cwd, m.env};
  if (auto w = fs::write_file_atomic(store_.job_dir(row.id) + "/mpi-launch.json", to_json(l), 0600); !w) {
    store_.remove_job(*id);
    return refuse(wire(w.error()), w.error().message());
  }
  auto created = db_.create_job(row);
  if (!created) {
    store_.remove_job(*id);
    return refuse(wire(created.error()), created.error().message());
  }
  auto rid = db_.create_restart(row.id, 0, row.created_ns);
  if (!rid) return refuse(wire(rid.error()), rid.error().message());
  RestartRow rec{.restart_id = *rid, .job = row.id, .generation = 0, .phase = proto::RestartPhase::place};
  Job& job = jobs_[row.id];
  job.row = row;
  job.mpi = true;
  job.inc = std::make_unique<Incarnation>(db_, rec, placement);
  log(Severity::info, "coord.launch", {row.id, "", {}, {}},
      "MPI job launched: " + std::to_string(row.ntasks) + " ranks, record " + std::to_string(*rid));
  send_mpi_launch(job, l, *blocks, "");
  reply(to, proto::LaunchJobReply{0, "", row.id});
  arm_interval(job);
}

void Coordinator::restart_mpi_job(const ReplyTo& to, Job& job, const proto::Restart& m, std::uint64_t gen) {
  auto refuse = [&](std::uint16_t code, const std::string& why) { reply(to, proto::RestartReply{code, why, 0, 0}); };
  auto l = load_mpi_launch(job.row.id);
  if (!l) return refuse(wire(l.error()), "job " + job.row.id + ": " + l.error().message());
  // Nodes: as given ("n1,n2" spreads the ranks, "n1:1,n2:3" counts them), else the job's
  // last placement (its blocks in rank order).
  std::vector<std::string> nodes = m.nodes;
  if (nodes.empty()) {
    std::vector<std::pair<std::string, std::uint32_t>> last;
    for (const auto& n : job.row.nodes) {
      if (!last.empty() && last.back().first == n) ++last.back().second;
      else last.emplace_back(n, 1);
    }
    for (const auto& [n, k] : last) nodes.push_back(n + ":" + std::to_string(k));
  }
  auto blocks = mpi_blocks(nodes, job.row.ntasks);
  if (!blocks) return refuse(kProtocol, "--nodes: " + blocks.error().message());
  auto placement = mpi_placement(*blocks);

  auto rid = begin_incarnation(job, gen, placement);
  if (!rid) return refuse(wire(rid.error()), rid.error().message());
  log(Severity::info, "coord.restart", {job.row.id, "", {}, gen},
      "MPI restart " + std::to_string(*rid) + " begins: " + describe(*blocks));
  if (m.detach) reply(to, proto::RestartReply{0, "", *rid, gen});
  else restart_replies_[*rid] = to;

  for (const auto& [rank, node] : placement)
    if (!agents_.alive(node))
      if (job.inc->on_rank_failed(rank, proto::RestartPhase::place, "node " + node + " has no registered agent"))
        return on_incarnation_final(job);
  std::uint32_t bad_rank = 0;
  if (auto ok = store_.check_restorable(job.row, gen, &bad_rank); !ok)
    if (job.inc->on_rank_failed(bad_rank, proto::RestartPhase::validate, ok.error().message()))
      return on_incarnation_final(job);
  job.inc->on_phase(proto::RestartPhase::validate);
  send_mpi_launch(job, *l, *blocks, store_.generation_dir(job.row.id, gen));
  arm_interval(job);
}

void Coordinator::on_mpi_run_ended(const std::string& node, const proto::MpiRunEnded& m) {
  auto it = jobs_.find(m.job);
  LogCtx ctx{m.job, node, {}, {}};
  if (it == jobs_.end() || !it->second.inc) {
    log(Severity::debug, "coord.exit", ctx, "end of an MPI run of no running job: ignored");
    return;
  }
  Job& job = it->second;
  bool ours = m.restart_id == 0 ? job.inc->is_launch() : job.inc->id() == m.restart_id;
  if (!ours) {
    log(Severity::debug, "coord.exit", ctx, "end of an earlier MPI run: ignored");
    return;
  }
  // A stop round that committed: the run ended because of it (its reply may be ahead of the
  // round's own bookkeeping).
  std::optional<std::uint64_t> stopped = job.stop_committed ? job.stopped_generation : std::nullopt;
  if (!stopped && job.round) {
    const auto& r = job.round->round();
    bool committed = r.state() == RoundState::commit || r.state() == RoundState::finishing ||
                     (r.finished() && r.outcome().committed);
    if (committed && r.config().mode == RoundMode::stop) {
      stopped = r.config().generation;
      job.stop_committed = true;
      job.stopped_generation = stopped;
    }
  }
  auto rec = fold_mpi_run(job.inc->id(), job.row.id, job.inc->placement(), m, stopped);
  bool clean = rec.outcome == proto::Outcome::exited && rec.exit_status.value_or(0) == 0;
  if (!stopped && !clean && rec.outcome != proto::Outcome::restart_failed) {
    // A rank that ended without a word on a node whose agent is lost: the node was lost (mpirun
    // ended the job because of it, Open MPI 4.1 cannot go on without a node). The record says
    // so, naming the node and its first rank, rather than the ranks mpirun killed afterwards.
    for (const auto& [rank, n] : job.inc->placement()) {
      bool reported = false;
      for (const auto& e : m.ranks) reported |= e.rank == rank;
      if (reported || agents_.alive(n)) continue;
      auto away = job.agents_away.find(n);
      std::string why = away != job.agents_away.end() ? away->second.why : "its agent is not connected";
      rec.outcome = proto::Outcome::signaled;
      rec.signal = 9;
      rec.exit_status.reset();
      rec.phase.reset();
      rec.rank = rank;
      rec.node = n;
      rec.reason = "node " + n + " lost (its agent: " + why + "; rank " + std::to_string(rank) +
                   " ended without a report); mpirun exited with " + std::to_string(m.launcher_status);
      break;
    }
  }
  log(Severity::info, "coord.exit", ctx,
      "MPI launcher ended with " + std::to_string(m.launcher_status) + ", " + std::to_string(m.ranks.size()) +
          " rank event(s): " + std::string(proto::name(rec.outcome)) +
          (rec.rank ? " rank " + std::to_string(*rec.rank) : "") + (rec.reason ? " (" + *rec.reason + ")" : ""));
  if (job.inc->on_mpi_run_ended(rec)) on_incarnation_final(job);
}

void Coordinator::on_mpi_agent_away(Job& job, const std::string& node, const std::string& why) {
  if (job.agents_away.count(node)) return;
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(cfg_.node_down_after).count();
  if (node == job.head)
    log(Severity::warning, "coord.job", {job.row.id, node, {}, {}},
        "agent of node " + node + " (the head: mpirun's parent) lost (" + why +
            "): unless that same agent is back within " + std::to_string(secs) + " s, the job counts as ended");
  else
    log(Severity::warning, "coord.job", {job.row.id, node, {}, {}},
        "agent of node " + node + " lost (" + why + "): the MPI job goes on (its ranks there are mpirun's); node " +
            node + " counts as down if its agent is not back within " + std::to_string(secs) + " s");
  auto& away = job.agents_away[node];
  away.why = why;
  away.agent_pid = agent_pids_.count(node) ? agent_pids_[node] : 0;
  away.timer = std::make_unique<boost::asio::steady_timer>(io_);
  away.timer->expires_after(cfg_.node_down_after);
  std::string id = job.row.id;
  away.timer->async_wait([this, id, node, secs](boost::system::error_code ec) {
    if (ec) return;
    auto it = jobs_.find(id);
    if (it == jobs_.end() || agents_.alive(node)) return;
    Job& j = it->second;
    if (!j.inc || j.inc->final() || j.ending) return;
    j.agents_away[node].why += ", not back within " + std::to_string(secs) + " s";
    j.ending = "node " + node + " down: its agent did not come back within " + std::to_string(secs) + " s";
    if (!j.round) end_half_dead_job(j);  // else once the round has aborted
  });
}

void Coordinator::end_mpi_job_head_lost(Job& job) {
  if (!job.inc || job.inc->final()) return;
  const auto& away = job.agents_away[job.head];
  proto::MpiRunEnded none;
  none.job = job.row.id;
  auto rec = fold_mpi_run(job.inc->id(), job.row.id, job.inc->placement(), none, std::nullopt);
  rec.outcome = proto::Outcome::signaled;
  rec.signal = 9;
  rec.exit_status.reset();
  rec.phase.reset();
  rec.rank = 0;  // rank 0 runs on the head node by construction
  rec.node = job.head;
  rec.reason = "node " + job.head + " lost (its agent: " + away.why +
               "); mpirun ran under that agent and ended with it, taking every rank";
  log(Severity::warning, "coord.exit", {job.row.id, job.head, {}, {}}, *rec.reason);
  if (job.inc->on_mpi_run_ended(rec)) on_incarnation_final(job);
}

}  // namespace ferry::coord
