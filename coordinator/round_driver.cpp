// SPDX-License-Identifier: Apache-2.0
// Executes CheckpointRound actions with Asio (see round_driver.hpp).
//
// Algorithm: execute() runs a batch of actions in order. A step for a node whose agent is
// not connected cannot be delivered: the node is collected and, after the batch, reported
// to the state machine as lost (which aborts the round or, after the commit, records a
// later error), and the resulting actions are executed in turn. The manifest commit is the
// coordinator's own I/O and runs inline: write MANIFEST.json, rename gen-N.partial ->
// gen-N, fsync the job directory, then mark the generation committed in the StateDb. A
// crash between the rename and the DB update is resolved at start-up (the generation is
// on disk under its final name, so it is kept).
#include "round_driver.hpp"

#include <vector>

#include "ferry/proto/auth.hpp"
#include "log.hpp"

namespace ferry::coord {

RoundDriver::RoundDriver(RoundServices svc, JobRow job, RoundConfig cfg, OnFinished on_finished)
    : svc_(std::move(svc)),
      job_(std::move(job)),
      round_(std::move(cfg)),
      on_finished_(std::move(on_finished)),
      timer_(svc_.io) {}

RoundDriver::~RoundDriver() { *alive_ = false; }

void RoundDriver::start() {
  started_ = std::chrono::steady_clock::now();
  started_ns_ = proto::realtime_ns();
  log(Severity::info, "coord.round", {job_.id, "", {}, round_.config().generation},
      "round " + std::to_string(round_.config().round_id) + " started (" +
          (round_.config().mode == RoundMode::stop ? "stop" : "resume") + ")");
  execute(round_.start());
}

void RoundDriver::on_reply(const std::string& node, const proto::RoundReply& reply) {
  if (reply.phase == proto::RoundPhase::dump && reply.round_id == round_.config().round_id) dumping_.erase(node);
  for (const auto& r : reply.results)
    if (r.code != 0)
      log(Severity::warning, "coord.round", {job_.id, node, r.rank, reply.generation},
          std::string(proto::name(reply.phase)) + " failed: " + r.message);
  execute(round_.on_reply(node, reply));
}

void RoundDriver::on_agent_lost(const std::string& node, const std::string& why) {
  execute(round_.on_agent_lost(node, why));
}

void RoundDriver::cancel(const std::string& reason) { execute(round_.cancel(reason)); }

void RoundDriver::execute(Actions actions) {
  while (!actions.empty()) {
    std::vector<std::string> unreachable;
    Actions next;
    for (auto& a : actions) {
      if (auto* s = std::get_if<SendStep>(&a)) {
        if (s->step.phase == proto::RoundPhase::dump) dumping_.insert(s->node);
        log(Severity::debug, "coord.round", {job_.id, s->node, {}, s->step.generation},
            "send " + std::string(proto::name(s->step.phase)));
        if (!svc_.agents.send(s->node, svc_.encode_step(s->step))) unreachable.push_back(s->node);
      } else if (auto* t = std::get_if<StartTimer>(&a)) {
        timer_.expires_after(t->after);
        std::weak_ptr<bool> alive = alive_;
        std::uint64_t id = t->timer_id;
        timer_.async_wait([this, alive, id](boost::system::error_code ec) {
          auto a = alive.lock();
          if (ec || !a || !*a) return;
          execute(round_.on_timeout(id));
        });
      } else if (auto* c = std::get_if<CommitManifest>(&a)) {
        commit_manifest(*c, next);
      } else if (auto* d = std::get_if<DiscardGeneration>(&a)) {
        svc_.store.discard(d->generation_dir);
        if (auto r = svc_.db.abort_round(d->job, d->generation); !r)
          log(Severity::error, "coord.round", {d->job, "", {}, d->generation}, "forget aborted round: " + r.error().message());
      } else if (auto* f = std::get_if<RoundFinished>(&a)) {
        timer_.cancel();
        const auto& o = f->outcome;
        if (o.committed)
          log(Severity::info, "coord.round", {job_.id, "", {}, o.generation},
              "round committed: " + std::to_string(o.bytes) + " bytes");
        else
          log(Severity::warning, "coord.round", {job_.id, o.failure ? o.failure->node : "", o.failure ? o.failure->rank : std::nullopt, o.generation},
              "round aborted: " + (o.failure ? o.failure->message() : std::string("?")));
        for (const auto& e : o.later_errors)
          log(Severity::warning, "coord.round", {job_.id, e.node, e.rank, o.generation}, "after the commit: " + e.message());
        on_finished_(o);  // may schedule our destruction; nothing follows in this batch
      }
    }
    for (const auto& node : unreachable) {
      auto more = round_.on_agent_lost(node);
      next.insert(next.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    }
    actions = std::move(next);
  }
}

void RoundDriver::commit_manifest(const CommitManifest& c, Actions& out) {
  auto duration = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started_).count());
  auto r = svc_.store.commit(job_, c, started_ns_, duration);
  if (r) {
    if (auto d = svc_.db.commit_generation(c.job, c.generation, c.bytes, duration); !d)
      log(Severity::error, "coord.round", {c.job, "", {}, c.generation},
          "generation is committed on disk but not in the state db: " + d.error().message());
  }
  auto more = round_.on_commit_done(r ? Result<void>{} : Result<void>(tl::unexpected(r.error())));
  out.insert(out.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
}

}  // namespace ferry::coord
