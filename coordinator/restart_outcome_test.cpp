// SPDX-License-Identifier: Apache-2.0
// Restart outcomes from agent events, and the `ferry wait` JSON / exit status contract.
#include "restart_outcome.hpp"

#include <gtest/gtest.h>

namespace ferry::coord {
namespace {

using proto::Outcome;
using proto::RestartPhase;

RestartOutcome two_nodes() {
  return RestartOutcome(8, "17", {{0, "n1"}, {1, "n1"}, {2, "n2"}, {3, "n2"}});
}

void all_running(RestartOutcome& o) {
  o.on_phase(RestartPhase::restore);
  for (std::uint32_t r = 0; r < 4; ++r) o.on_rank_running(r);
}

TEST(RestartOutcome, ExitedWithFirstNonZeroStatus) {
  auto o = two_nodes();
  all_running(o);
  EXPECT_EQ(o.record().phase, RestartPhase::resume);
  EXPECT_EQ(o.ranks_ended(), 0u);
  o.on_rank_exited(0, 0, std::nullopt);
  // every rank started, one ended: a checkpoint is refused (the job is ending)
  EXPECT_TRUE(o.all_running());
  EXPECT_EQ(o.ranks_ended(), 1u);
  o.on_rank_exited(2, 3, std::nullopt);
  o.on_rank_exited(1, 4, std::nullopt);
  EXPECT_FALSE(o.final());
  o.on_rank_exited(3, 0, std::nullopt);
  ASSERT_TRUE(o.final());
  EXPECT_EQ(o.record().outcome, Outcome::exited);
  EXPECT_EQ(o.record().exit_status, 3);
  EXPECT_EQ(o.record().rank, 2u);
  EXPECT_EQ(o.record().node, "n2");
  EXPECT_EQ(wait_json(o.record()),
            R"({"restart_id":8,"job":"17","outcome":"exited","exit_status":3,"signal":null,)"
            R"("phase":null,"rank":2,"node":"n2","reason":null})");
  EXPECT_EQ(wait_exit_status(o.record(), false), 3);
  EXPECT_EQ(wait_stderr_line(o.record(), false), "");
}

TEST(RestartOutcome, AllZeroIsExitedZero) {
  auto o = two_nodes();
  all_running(o);
  for (std::uint32_t r = 0; r < 4; ++r) o.on_rank_exited(r, 0, std::nullopt);
  EXPECT_EQ(o.record().outcome, Outcome::exited);
  EXPECT_EQ(o.record().exit_status, 0);
  EXPECT_EQ(o.record().rank, std::nullopt);
  EXPECT_EQ(wait_exit_status(o.record(), false), 0);
}

TEST(RestartOutcome, SignalWinsOverStatus) {
  auto o = two_nodes();
  all_running(o);
  o.on_rank_exited(0, 1, std::nullopt);
  o.on_rank_exited(3, std::nullopt, 11);
  o.on_rank_exited(3, std::nullopt, 11);  // duplicate
  o.on_rank_exited(1, std::nullopt, 15);
  o.on_rank_exited(2, 0, std::nullopt);
  ASSERT_TRUE(o.final());
  EXPECT_EQ(o.record().outcome, Outcome::signaled);
  EXPECT_EQ(o.record().signal, 11);
  EXPECT_EQ(o.record().rank, 3u);
  EXPECT_EQ(o.record().exit_status, std::nullopt);
  EXPECT_EQ(wait_exit_status(o.record(), false), 139);
  EXPECT_EQ(wait_json(o.record()),
            R"({"restart_id":8,"job":"17","outcome":"signaled","exit_status":null,"signal":11,)"
            R"("phase":null,"rank":3,"node":"n2","reason":null})");
}

TEST(RestartOutcome, FailureBeforeRunningIsRestartFailedAndFinal) {
  auto o = two_nodes();
  o.on_phase(RestartPhase::validate);
  o.on_rank_running(0);
  o.on_rank_failed(2, RestartPhase::validate, "image rank-2.h5 missing");
  ASSERT_TRUE(o.final());
  o.on_rank_failed(3, RestartPhase::restore, "later failure");  // ignored: outcome is final
  o.on_rank_exited(0, 0, std::nullopt);
  const auto& r = o.record();
  EXPECT_EQ(r.outcome, Outcome::restart_failed);
  EXPECT_EQ(r.phase, RestartPhase::validate);
  EXPECT_EQ(r.rank, 2u);
  EXPECT_EQ(r.node, "n2");
  EXPECT_EQ(wait_exit_status(r, false), kWaitRestartFailed);
  EXPECT_EQ(wait_json(r),
            R"({"restart_id":8,"job":"17","outcome":"restart_failed","exit_status":null,)"
            R"("signal":null,"phase":"validate","rank":2,"node":"n2","reason":"image rank-2.h5 missing"})");
  EXPECT_EQ(wait_stderr_line(r, false),
            "ferry: restart 8 of job 17 failed in validate on node n2 rank 2: image rank-2.h5 missing");
}

TEST(RestartOutcome, AgentLostBeforeAndAfterRunning) {
  auto before = two_nodes();
  before.on_phase(RestartPhase::restore);
  before.on_agent_lost("n2");
  EXPECT_EQ(before.record().outcome, Outcome::restart_failed);
  EXPECT_EQ(before.record().phase, RestartPhase::restore);
  EXPECT_EQ(before.record().rank, 2u);
  EXPECT_EQ(before.record().reason, "agent lost");

  auto after = two_nodes();
  all_running(after);
  after.on_rank_exited(0, 0, std::nullopt);
  after.on_agent_lost("n2");
  EXPECT_FALSE(after.final());  // rank 1 on n1 still runs
  after.on_rank_exited(1, 0, std::nullopt);
  ASSERT_TRUE(after.final());
  EXPECT_EQ(after.record().outcome, Outcome::signaled);
  EXPECT_EQ(after.record().signal, 9);
  EXPECT_EQ(after.record().rank, 2u);
  EXPECT_EQ(after.record().reason, "agent lost");
}

TEST(RestartOutcome, RunningRecordAndTimeout) {
  auto o = two_nodes();
  EXPECT_EQ(wait_json(o.record()),
            R"({"restart_id":8,"job":"17","outcome":"running","exit_status":null,"signal":null,)"
            R"("phase":"place","rank":null,"node":null,"reason":null})");
  EXPECT_EQ(wait_exit_status(o.record(), true), kWaitTimedOut);
  EXPECT_EQ(wait_stderr_line(o.record(), true), "ferry: restart 8 of job 17 still running at the timeout");
}

}  // namespace
}  // namespace ferry::coord
