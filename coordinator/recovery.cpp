// SPDX-License-Identifier: Apache-2.0
// Coordinator start-up after a crash or a restart (PROTOCOL.md "A checkpoint round").
//
// Algorithm:
//  1. Every round the StateDb still lists as in flight: if gen-N exists under its final
//     name with a job manifest, the rename (the commit point) happened: mark it committed.
//     Otherwise remove gen-N.partial, forget the round, and queue an ABORT step for each of
//     the round's nodes, sent when its agent registers (the agent resumes frozen ranks).
//  2. Every job in state "running": reload its current incarnation (the newest running
//     record) with its placement and the rank exits already stored. A restart that had not
//     reached "resume" cannot be continued (the agents' replies went to the dead process):
//     it becomes restart_failed and its ranks are stopped once their agents are back.
//     Nodes of running jobs are expected to re-register within lost_after, else they are
//     declared lost (and their ranks with them).
#include <unistd.h>

#include "coordinator.hpp"
#include "log.hpp"

namespace ferry::coord {

Result<void> Coordinator::recover() {
  FERRY_TRY(rounds, db_.rounds_in_flight());
  for (const auto& r : rounds) {
    LogCtx ctx{r.job, "", {}, r.generation};
    std::uint64_t bytes = 0;
    if (store_.committed_on_disk(r.job, r.generation, &bytes)) {
      FERRY_TRY_VOID(db_.commit_generation(r.job, r.generation, bytes, 0));
      log(Severity::warning, "coord.recovery", ctx, "round " + std::to_string(r.round_id) +
                                                        " was interrupted after its commit: generation kept");
      continue;
    }
    store_.discard(r.generation_dir);
    FERRY_TRY_VOID(db_.abort_round(r.job, r.generation));
    log(Severity::warning, "coord.recovery", ctx, "round " + std::to_string(r.round_id) + " was interrupted: aborted");
    auto job = db_.job(r.job);
    for (const auto& node : r.nodes) {
      proto::RoundStep abort{.job = r.job, .generation = r.generation, .round_id = r.round_id,
                             .phase = proto::RoundPhase::abort, .ranks = {}, .generation_dir = r.generation_dir,
                             .deadline_ms = static_cast<std::uint32_t>(cfg_.finish_timeout.count())};
      if (job)
        for (std::uint32_t rank = 0; rank < job->nodes.size(); ++rank)
          if (job->nodes[rank] == node) abort.ranks.push_back(rank);
      pending_aborts_[node].push_back(abort);
      agents_.expect(node);
    }
  }

  FERRY_TRY(jobs, db_.jobs());
  for (const auto& row : jobs) {
    if (row.state != "running") continue;
    FERRY_TRY(records, db_.restarts(row.id));
    const RestartRow* current = nullptr;
    for (const auto& rec : records)
      if (rec.outcome == proto::Outcome::running) current = &rec;
    Job& job = jobs_[row.id];
    job.row = row;
    if (::access((store_.job_dir(row.id) + "/mpi-launch.json").c_str(), F_OK) == 0) {
      job.mpi = true;  // its launcher runs on rank 0's node (mpi_requests.cpp)
      job.head = row.nodes.empty() ? "" : row.nodes.front();
    }
    if (!current) continue;
    std::map<std::uint32_t, std::string> placement;
    for (std::uint32_t rank = 0; rank < row.nodes.size(); ++rank) placement[rank] = row.nodes[rank];
    job.inc = std::make_unique<Incarnation>(db_, *current, placement);
    LogCtx ctx{row.id, "", {}, {}};
    if (current->phase != proto::RestartPhase::resume) {
      log(Severity::warning, "coord.recovery", ctx, "restart " + std::to_string(current->restart_id) + " was under way: failed");
      if (job.inc->on_rank_failed(placement.begin()->first, current->phase.value_or(proto::RestartPhase::place),
                                  "the coordinator restarted during the restart"))
        on_incarnation_final(job);
      continue;
    }
    FERRY_TRY(exits, db_.rank_exits(current->restart_id));
    if (job.inc->replay_exits(exits)) {
      on_incarnation_final(job);
      continue;
    }
    log(Severity::info, "coord.recovery", ctx, "job still running (record " + std::to_string(current->restart_id) + ")");
    for (const auto& node : job.inc->nodes()) agents_.expect(node);
    arm_interval(job);
  }
  return {};
}

}  // namespace ferry::coord
