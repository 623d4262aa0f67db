// SPDX-License-Identifier: Apache-2.0
// Coordinator: checkpoint rounds of a job — on request (CHECKPOINT) or from the job's
// --interval timer — and the retention of --keep K generations.
//
// A round: allocate generation N (after every generation the DB or the store knows), mkdir
// gen-N.partial, record the round in the StateDb (so a coordinator crash can abort it), then
// hand it to a RoundDriver (an MPI job's round bounded by the user's --timeout, if given: the
// proxies' own bound, with the quiesce step's deadline a little beyond it). When it ends: answer the CHECKPOINT, and if N was committed
// delete the generations older than the newest K (only ever after a newer commit, so a
// failed round never costs a generation).
#include <algorithm>
#include <filesystem>

#include "coordinator.hpp"
#include "ferry/proto/status.hpp"
#include "log.hpp"

namespace ferry::coord {

Result<void> Coordinator::start_round(Job& job, RoundMode mode, std::optional<ReplyTo> reply_to,
                                       std::uint32_t timeout_ms) {
  FERRY_TRY(gen, db_.next_generation(job.row.id));
  std::error_code ec;
  while (std::filesystem::exists(store_.generation_dir(job.row.id, gen), ec)) ++gen;
  FERRY_TRY(dir, store_.begin_generation(job.row, gen));
  RoundRow row;
  row.job = job.row.id;
  row.generation = gen;
  row.generation_dir = dir;
  if (job.mpi) row.nodes.push_back(job.head);
  else
    for (const auto& n : job.inc->nodes()) row.nodes.push_back(n);
  row.started_ns = proto::realtime_ns();
  auto begun = db_.begin_round(row);
  if (!begun) {
    store_.discard(dir);
    return fail(begun.error());
  }
  RoundConfig cfg;
  cfg.job = job.row.id;
  cfg.generation = gen;
  cfg.round_id = begun->round_id;
  cfg.generation_dir = dir;
  if (job.mpi) {
    // The head agent drives the proxies' collective checkpoint: every step goes there.
    std::vector<std::uint32_t> all;
    for (const auto& [rank, node] : job.inc->placement()) all.push_back(rank);
    cfg.nodes.push_back(RoundNode{job.head, all});
    cfg.rank_nodes = job.inc->placement();
  } else {
    for (const auto& n : job.inc->nodes()) cfg.nodes.push_back(RoundNode{n, job.inc->ranks_on(n)});
  }
  cfg.mode = mode;
  cfg.prepare_timeout = cfg_.prepare_timeout;
  cfg.quiesce_timeout = cfg_.quiesce_timeout;
  cfg.dump_timeout = cfg_.dump_timeout;
  cfg.finish_timeout = cfg_.finish_timeout;
  if (job.mpi && timeout_ms > 0) {
    // `ferry checkpoint --timeout`: the proxies give the round up after it (rank 0 names the
    // ranks that did not answer); the quiesce step waits a little longer for that report.
    cfg.round_timeout_ms = timeout_ms;
    cfg.quiesce_timeout = std::chrono::milliseconds(timeout_ms + std::max<std::uint32_t>(2000, timeout_ms / 4));
  }
  RoundServices svc{io_, agents_, store_, db_, [this](const proto::RoundStep& step) {
                      return proto::encode_signed(step, next_request_id(), 0, cfg_.cluster_secret);
                    }};
  job.checkpoint_reply = std::move(reply_to);
  std::string id = job.row.id;
  job.round = std::make_unique<RoundDriver>(svc, job.row, cfg, [this, id](const RoundOutcome& o) {
    // The driver is still on the stack: finish once it has returned.
    boost::asio::post(io_, [this, id, o] { on_round_finished(id, o); });
  });
  job.round->start();
  return {};
}

void Coordinator::on_round_finished(const std::string& job_id, RoundOutcome o) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  Job& job = it->second;
  bool stop = job.round && job.round->round().config().mode == RoundMode::stop;
  auto started = job.round ? job.round->started() : std::chrono::steady_clock::now();
  job.round.reset();
  if (o.committed && stop) {
    job.stop_committed = true;
    job.stopped_generation = o.generation;
    // Ranks that already ended before the stop step arrived leave the job "exited".
    if (job.inc && job.inc->final() && job.row.state == "exited") {
      job.row.state = "stopped";
      (void)db_.set_job_state(job.row.id, "stopped");
      (void)store_.save_job_state(job.row, "stopped");
    }
  }
  if (job.checkpoint_reply) {
    proto::CheckpointReply r;
    r.generation = o.generation;
    r.bytes = o.bytes;
    r.duration_ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count());
    if (!o.committed && o.failure) {
      r.code = proto::to_wire(o.failure->code);
      if (r.code == proto::kWireOk) r.code = static_cast<std::uint16_t>(proto::perr::internal);
      r.message = o.failure->message();
      r.failed_phase = o.failure->phase;
      r.failed_rank = o.failure->rank;
      r.failed_node = o.failure->node;
    }
    reply(*job.checkpoint_reply, r);
    job.checkpoint_reply.reset();
  }
  if (o.committed) apply_retention(job);
  if (job.ending) end_half_dead_job(job);
}

void Coordinator::apply_retention(Job& job) {
  if (job.row.keep == 0) return;
  auto gens = db_.generations(job.row.id);
  if (!gens) return;
  while (gens->size() > job.row.keep) {
    std::uint64_t old = gens->front().number;
    store_.remove_generation(job.row.id, old);
    if (auto r = db_.delete_generation(job.row.id, old); !r)
      log(Severity::error, "coord.round", {job.row.id, "", {}, old}, "forget old generation: " + r.error().message());
    else
      log(Severity::info, "coord.round", {job.row.id, "", {}, old}, "generation deleted (keep " + std::to_string(job.row.keep) + ")");
    gens->erase(gens->begin());
  }
}

void Coordinator::arm_interval(Job& job) {
  if (job.row.interval_s == 0) return;
  if (!job.interval) job.interval = std::make_unique<boost::asio::steady_timer>(io_);
  job.interval->expires_after(std::chrono::seconds(job.row.interval_s));
  std::string id = job.row.id;
  job.interval->async_wait([this, id](boost::system::error_code ec) {
    if (ec) return;
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Job& j = it->second;
    if (!j.inc || j.inc->final()) return;
    if (!j.round && !j.ending && j.inc->all_running()) {
      log(Severity::info, "coord.round", {id, "", {}, {}}, "periodic checkpoint");
      if (auto r = start_round(j, RoundMode::resume, std::nullopt); !r)
        log(Severity::error, "coord.round", {id, "", {}, {}}, "periodic checkpoint not started: " + r.error().message());
    }
    arm_interval(j);
  });
}

}  // namespace ferry::coord
