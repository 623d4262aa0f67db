// SPDX-License-Identifier: Apache-2.0
// The checkpoint round without sockets: a fake cluster answers the SendStep actions.
#include "checkpoint_round.hpp"

#include <gtest/gtest.h>

#include <map>

#include "ferry/proto/status.hpp"

namespace ferry::coord {
namespace {

using proto::RoundPhase;

// Collects actions and builds replies.
struct Harness {
  CheckpointRound round;
  std::map<std::string, proto::RoundStep> last_step;  // per node, from the latest actions
  std::vector<RoundPhase> phases_sent;                 // one entry per phase (deduplicated)
  std::uint64_t timer = 0;
  int commits = 0, discards = 0, finishes = 0;

  explicit Harness(RoundMode mode = RoundMode::resume)
      : round(RoundConfig{.job = "7", .generation = 4, .round_id = 11,
                          .generation_dir = "/store/jobs/7/gen-000004.partial",
                          .nodes = {{"n1", {0, 1}}, {"n2", {2, 3}}, {"n3", {4}}},
                          .mode = mode}) {}

  void apply(const Actions& actions) {
    for (const auto& a : actions) {
      if (auto* s = std::get_if<SendStep>(&a)) {
        last_step[s->node] = s->step;
        if (phases_sent.empty() || phases_sent.back() != s->step.phase)
          phases_sent.push_back(s->step.phase);
      } else if (auto* t = std::get_if<StartTimer>(&a)) {
        timer = t->timer_id;
      } else if (std::holds_alternative<CommitManifest>(a)) {
        ++commits;
      } else if (std::holds_alternative<DiscardGeneration>(a)) {
        ++discards;
      } else if (std::holds_alternative<RoundFinished>(a)) {
        ++finishes;
      }
    }
  }

  proto::RoundReply reply(const std::string& node, std::uint16_t code = 0, std::uint32_t bad_rank = 99) {
    const auto& step = last_step.at(node);
    proto::RoundReply r{.job = step.job, .generation = step.generation, .round_id = step.round_id,
                        .phase = step.phase, .results = {}};
    for (auto rank : step.ranks)
      r.results.push_back({rank, rank == bad_rank ? code : std::uint16_t{0},
                           rank == bad_rank ? "write pages: disk full" : "", 1000 + rank, 50});
    return r;
  }
  void ok(const std::string& node) { apply(round.on_reply(node, reply(node))); }
  void all_ok(std::initializer_list<const char*> nodes = {"n1", "n2", "n3"}) {
    for (auto n : nodes) ok(n);
  }
};

TEST(CheckpointRound, SuccessResumes) {
  Harness h;
  h.apply(h.round.start());
  EXPECT_EQ(h.round.state(), RoundState::prepare);
  EXPECT_EQ(h.last_step.at("n2").ranks, (std::vector<std::uint32_t>{2, 3}));
  h.all_ok();  // prepare
  h.all_ok();  // quiesce
  EXPECT_EQ(h.round.state(), RoundState::dump);
  h.all_ok();  // dump
  EXPECT_EQ(h.round.state(), RoundState::committing);
  EXPECT_EQ(h.commits, 1);
  EXPECT_EQ(h.round.outcome().bytes, 5000u + 0 + 1 + 2 + 3 + 4);
  h.apply(h.round.on_commit_done({}));
  EXPECT_EQ(h.round.state(), RoundState::commit);
  h.all_ok();  // commit
  EXPECT_EQ(h.round.state(), RoundState::finishing);
  h.all_ok();  // resume
  EXPECT_TRUE(h.round.finished());
  EXPECT_EQ(h.finishes, 1);
  EXPECT_EQ(h.discards, 0);
  EXPECT_EQ(h.phases_sent, (std::vector<RoundPhase>{RoundPhase::prepare, RoundPhase::quiesce,
                                                    RoundPhase::dump, RoundPhase::commit,
                                                    RoundPhase::resume}));
  const auto& o = h.round.outcome();
  EXPECT_TRUE(o.committed);
  EXPECT_FALSE(o.failure);
  ASSERT_EQ(o.ranks.size(), 5u);
  EXPECT_EQ(o.ranks[2].node, "n2");
  EXPECT_EQ(o.ranks[2].rank, 2u);
}

// `ferry checkpoint --timeout` of an MPI job: the quiesce step carries the user's bound for the
// proxies' round (the head agent hands it to rank 0's proxy) and its own deadline beyond it; the
// other steps carry none.
TEST(CheckpointRound, UserTimeoutGoesWithTheQuiesceStepOnly) {
  CheckpointRound round(RoundConfig{.job = "8", .generation = 2, .round_id = 3, .generation_dir = "/s/gen-2.partial",
                                    .nodes = {{"h1", {0, 1, 2, 3}}}, .rank_nodes = {}, .mode = RoundMode::resume,
                                    .quiesce_timeout = std::chrono::milliseconds(7000), .round_timeout_ms = 5000});
  std::map<RoundPhase, proto::RoundStep> steps;
  auto take = [&](const Actions& actions) {
    for (const auto& a : actions)
      if (auto* s = std::get_if<SendStep>(&a)) steps[s->step.phase] = s->step;
  };
  auto ok = [&](RoundPhase p) {
    const auto& st = steps.at(p);
    proto::RoundReply r{.job = st.job, .generation = st.generation, .round_id = st.round_id, .phase = p, .results = {}};
    for (auto rank : st.ranks) r.results.push_back({rank, 0, "", 10, 1});
    take(round.on_reply("h1", r));
  };
  take(round.start());
  ok(RoundPhase::prepare);
  ASSERT_TRUE(steps.count(RoundPhase::quiesce));
  EXPECT_EQ(steps[RoundPhase::quiesce].round_timeout_ms, 5000u);
  EXPECT_EQ(steps[RoundPhase::quiesce].deadline_ms, 7000u);
  EXPECT_EQ(steps[RoundPhase::prepare].round_timeout_ms, 0u);
  ok(RoundPhase::quiesce);
  ASSERT_TRUE(steps.count(RoundPhase::dump));
  EXPECT_EQ(steps[RoundPhase::dump].round_timeout_ms, 0u);
}

// An MPI job's round: every step goes to the head node h1; ranks 2, 3 run on h2. h2's agent lost
// in the quiesce aborts the round at once naming h2 and rank 2 (the abort goes to h1); a node
// that runs none of the ranks changes nothing.
TEST(CheckpointRound, LostRankNodeOfAnMpiRoundAbortsNamingIt) {
  CheckpointRound round(RoundConfig{.job = "8", .generation = 2, .round_id = 3, .generation_dir = "/s/gen-2.partial",
                                    .nodes = {{"h1", {0, 1, 2, 3}}},
                                    .rank_nodes = {{0, "h1"}, {1, "h1"}, {2, "h2"}, {3, "h2"}}});
  std::vector<proto::RoundStep> sent;
  auto take = [&](const Actions& actions) {
    for (const auto& a : actions)
      if (auto* s = std::get_if<SendStep>(&a)) {
        EXPECT_EQ(s->node, "h1");
        sent.push_back(s->step);
      }
  };
  auto ok = [&] {
    const auto& st = sent.back();
    proto::RoundReply r{.job = st.job, .generation = st.generation, .round_id = st.round_id, .phase = st.phase,
                        .results = {}};
    for (auto rank : st.ranks) r.results.push_back({rank, 0, "", 10, 1});
    take(round.on_reply("h1", r));
  };
  take(round.start());
  ok();  // prepare
  ASSERT_EQ(sent.back().phase, RoundPhase::quiesce);
  take(round.on_agent_lost("h3", "agent lost (connection closed)"));
  EXPECT_EQ(round.state(), RoundState::quiesce);
  take(round.on_agent_lost("h2", "agent lost (connection closed): node h2 may be gone"));
  EXPECT_EQ(round.state(), RoundState::aborting);
  EXPECT_EQ(sent.back().phase, RoundPhase::abort);
  ok();
  ASSERT_TRUE(round.finished());
  EXPECT_FALSE(round.outcome().committed);
  const auto& f = *round.outcome().failure;
  EXPECT_EQ(f.node, "h2");
  EXPECT_EQ(f.rank, 2u);
  EXPECT_EQ(f.message(), "quiesce failed on node h2 rank 2: agent lost (connection closed): node h2 may be gone");
}

TEST(CheckpointRound, SuccessStopsForMigration) {
  Harness h(RoundMode::stop);
  h.apply(h.round.start());
  for (int i = 0; i < 3; ++i) h.all_ok();
  h.apply(h.round.on_commit_done({}));
  h.all_ok();
  EXPECT_EQ(h.phases_sent.back(), RoundPhase::stop);
  h.all_ok();
  EXPECT_TRUE(h.round.outcome().committed);
}

class FailInPhase : public ::testing::TestWithParam<int> {};

TEST_P(FailInPhase, AbortsNamingNodeRankAndPhase) {
  const int fail_at = GetParam();  // 0 prepare, 1 quiesce, 2 dump
  Harness h;
  h.apply(h.round.start());
  for (int i = 0; i < fail_at; ++i) h.all_ok();
  RoundPhase phase = h.last_step.at("n2").phase;
  h.ok("n1");
  h.apply(h.round.on_reply("n2", h.reply("n2", 1000 + ENOSPC, 3)));
  EXPECT_EQ(h.round.state(), RoundState::aborting);
  EXPECT_EQ(h.phases_sent.back(), RoundPhase::abort);
  EXPECT_EQ(h.last_step.size(), 3u);
  for (const auto& [node, step] : h.last_step) EXPECT_EQ(step.phase, RoundPhase::abort) << node;
  // n3's reply to the aborted phase is late now and must not count as an abort ack.
  proto::RoundReply late{.job = "7", .generation = 4, .round_id = 11, .phase = phase,
                         .results = {{4, 0, "", 0, 0}}};
  h.apply(h.round.on_reply("n3", late));
  EXPECT_EQ(h.round.ignored_replies(), 1u);
  h.all_ok();  // abort acks
  EXPECT_TRUE(h.round.finished());
  EXPECT_EQ(h.commits, 0);
  EXPECT_EQ(h.discards, 1);
  const auto& o = h.round.outcome();
  EXPECT_FALSE(o.committed);
  ASSERT_TRUE(o.failure);
  EXPECT_EQ(o.failure->phase, phase);
  EXPECT_EQ(o.failure->node, "n2");
  EXPECT_EQ(o.failure->rank, 3u);
  EXPECT_EQ(o.failure->code, std::error_code(ENOSPC, std::system_category()));
  EXPECT_EQ(o.failure->message(),
            std::string(proto::name(phase)) + " failed on node n2 rank 3: write pages: disk full (" +
                std::error_code(ENOSPC, std::system_category()).message() + ")");
}

INSTANTIATE_TEST_SUITE_P(Phases, FailInPhase, ::testing::Values(0, 1, 2));

TEST(CheckpointRound, ManifestCommitFailureAborts) {
  Harness h;
  h.apply(h.round.start());
  for (int i = 0; i < 3; ++i) h.all_ok();
  h.apply(h.round.on_commit_done(fail(Error::from_errno("rename gen-000004.partial", EIO))));
  EXPECT_EQ(h.round.state(), RoundState::aborting);
  h.all_ok();
  ASSERT_TRUE(h.round.outcome().failure);
  EXPECT_EQ(h.round.outcome().failure->phase, RoundPhase::commit);
  EXPECT_EQ(h.round.outcome().failure->node, "coordinator");
  EXPECT_FALSE(h.round.outcome().committed);
  EXPECT_EQ(h.discards, 1);
}

TEST(CheckpointRound, TimeoutNamesSilentNodeAndStaleTimersAreIgnored) {
  Harness h;
  h.apply(h.round.start());
  std::uint64_t prepare_timer = h.timer;
  h.all_ok();  // -> quiesce, new timer
  h.apply(h.round.on_timeout(prepare_timer));
  EXPECT_EQ(h.round.state(), RoundState::quiesce);  // stale timer: nothing happens
  h.ok("n1");
  h.apply(h.round.on_timeout(h.timer));
  EXPECT_EQ(h.round.state(), RoundState::aborting);
  const auto& f = *h.round.outcome().failure;
  EXPECT_EQ(f.phase, RoundPhase::quiesce);
  EXPECT_EQ(f.node, "n2");
  EXPECT_EQ(f.rank, 2u);
  EXPECT_EQ(f.code, make_error_code(proto::perr::timeout));
  EXPECT_NE(f.reason.find("also silent: n3"), std::string::npos) << f.reason;
  // Nobody answers the abort: the abort's own timeout finishes the round.
  h.apply(h.round.on_timeout(h.timer));
  EXPECT_TRUE(h.round.finished());
  EXPECT_EQ(h.discards, 1);
  EXPECT_EQ(h.round.outcome().later_errors.size(), 3u);
}

TEST(CheckpointRound, LostAgentMidDumpAbortsWithoutWaitingForIt) {
  Harness h;
  h.apply(h.round.start());
  h.all_ok();
  h.all_ok();
  h.ok("n1");  // n1 finished its dump, n2 dies while dumping
  h.last_step.clear();
  h.apply(h.round.on_agent_lost("n2"));
  EXPECT_EQ(h.round.state(), RoundState::aborting);
  EXPECT_EQ(h.last_step.count("n2"), 0u);  // no ABORT to a lost agent
  EXPECT_EQ(h.last_step.count("n1"), 1u);
  h.apply(h.round.on_agent_lost("n2"));  // reported twice: harmless
  h.ok("n1");
  EXPECT_FALSE(h.round.finished());
  h.ok("n3");
  EXPECT_TRUE(h.round.finished());
  const auto& f = *h.round.outcome().failure;
  EXPECT_EQ(f.phase, RoundPhase::dump);
  EXPECT_EQ(f.node, "n2");
  EXPECT_EQ(f.rank, 2u);
  EXPECT_EQ(f.message(), "dump failed on node n2 rank 2: agent lost");
  EXPECT_EQ(h.commits, 0);
}

TEST(CheckpointRound, DuplicateLateAndForeignRepliesAreIgnored) {
  Harness h;
  h.apply(h.round.start());
  auto n1_prepare = h.reply("n1");
  h.apply(h.round.on_reply("n1", n1_prepare));
  h.apply(h.round.on_reply("n1", n1_prepare));  // duplicate
  h.ok("n2");
  EXPECT_EQ(h.round.state(), RoundState::prepare);  // still waiting for n3
  auto other_round = h.reply("n3");
  other_round.round_id = 10;
  h.apply(h.round.on_reply("n3", other_round));
  h.apply(h.round.on_reply("n9", h.reply("n3")));  // unknown node
  EXPECT_EQ(h.round.state(), RoundState::prepare);
  h.ok("n3");
  EXPECT_EQ(h.round.state(), RoundState::quiesce);
  h.apply(h.round.on_reply("n1", n1_prepare));  // late: prepare is over
  EXPECT_EQ(h.round.ignored_replies(), 4u);
  h.all_ok();
  h.all_ok();
  h.apply(h.round.on_commit_done({}));
  h.apply(h.round.on_commit_done({}));  // second completion ignored
  h.all_ok();
  h.all_ok();
  EXPECT_TRUE(h.round.outcome().committed);
  EXPECT_EQ(h.finishes, 1);
}

TEST(CheckpointRound, MissingRankInReplyIsAProtocolFailure) {
  Harness h;
  h.apply(h.round.start());
  auto r = h.reply("n1");
  r.results.pop_back();
  h.apply(h.round.on_reply("n1", r));
  ASSERT_TRUE(h.round.outcome().failure);
  EXPECT_EQ(h.round.outcome().failure->rank, 1u);
  EXPECT_EQ(h.round.outcome().failure->code, make_error_code(errc::protocol));
}

TEST(CheckpointRound, ErrorsAfterCommitDoNotUncommit) {
  Harness h;
  h.apply(h.round.start());
  for (int i = 0; i < 3; ++i) h.all_ok();
  h.apply(h.round.on_agent_lost("n3"));  // lost while the manifest is written
  EXPECT_EQ(h.round.state(), RoundState::committing);
  h.apply(h.round.on_commit_done({}));
  h.all_ok({"n1", "n2"});  // commit
  h.ok("n1");              // resume
  h.apply(h.round.on_reply("n2", h.reply("n2", 12, 2)));  // rank 2 vanished before resume
  EXPECT_TRUE(h.round.finished());
  const auto& o = h.round.outcome();
  EXPECT_TRUE(o.committed);
  EXPECT_FALSE(o.failure);
  ASSERT_EQ(o.later_errors.size(), 2u);
  EXPECT_EQ(o.later_errors[0].node, "n3");
  EXPECT_EQ(o.later_errors[0].phase, RoundPhase::commit);
  EXPECT_EQ(o.later_errors[1].rank, 2u);
  EXPECT_EQ(o.later_errors[1].phase, RoundPhase::resume);
}

TEST(CheckpointRound, LostBeforeStartAndCancel) {
  Harness h;
  h.apply(h.round.on_agent_lost("n3"));
  h.apply(h.round.start());
  EXPECT_EQ(h.round.state(), RoundState::aborting);
  EXPECT_EQ(h.round.outcome().failure->node, "n3");
  EXPECT_EQ(h.last_step.count("n3"), 0u);

  Harness c;
  c.apply(c.round.start());
  c.all_ok();
  c.apply(c.round.cancel("job deleted"));
  EXPECT_EQ(c.round.outcome().failure->phase, RoundPhase::quiesce);
  c.all_ok();
  EXPECT_TRUE(c.round.finished());
  EXPECT_EQ(c.discards, 1);
}

}  // namespace
}  // namespace ferry::coord
