// SPDX-License-Identifier: Apache-2.0
// MPI jobs: placement blocks, the launcher's command line, the proxies' event files, outcome folding.
#include "mpi_jobs.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ferry::coord {
namespace {

using proto::MpiEnd;
using proto::Outcome;
using Blocks = std::vector<std::pair<std::string, std::uint32_t>>;

TEST(MpiJobs, BlocksSpreadOrCount) {
  EXPECT_EQ(*mpi_blocks({"n1", "n2"}, 4), (Blocks{{"n1", 2}, {"n2", 2}}));
  EXPECT_EQ(*mpi_blocks({"n1", "n2"}, 3), (Blocks{{"n1", 2}, {"n2", 1}}));
  EXPECT_EQ(*mpi_blocks({"n1:1", "n2:3"}, 4), (Blocks{{"n1", 1}, {"n2", 3}}));
  EXPECT_EQ(*mpi_blocks({"n1:4", "n2:0"}, 4), (Blocks{{"n1", 4}}));
  EXPECT_FALSE(mpi_blocks({"n1:1", "n2:2"}, 4));  // 3 of 4 placed
  EXPECT_FALSE(mpi_blocks({"n1:1", "n2"}, 4));    // counts for some only
  EXPECT_FALSE(mpi_blocks({"n1:x"}, 4));
  EXPECT_FALSE(mpi_blocks({}, 4));
  auto p = mpi_placement(Blocks{{"n1", 1}, {"n2", 3}});
  EXPECT_EQ(p.at(0), "n1");
  EXPECT_EQ(p.at(3), "n2");
}

TEST(MpiJobs, CommandReplacesPlacementOptions) {
  MpiLaunch l{{"./app", "7"}, {"--oversubscribe", "-np", "9", "--host", "x:9", "--mca", "a", "b"}, "/bin/proxy", "/", {}};
  auto cmd = mpi_command(l, Blocks{{"n1", 1}, {"n2", 3}}, {{"n1", "10.0.0.1"}}, 4, "/s/gen-000002");
  std::vector<std::string> want{"mpirun", "--oversubscribe", "--mca", "a", "b", "-np", "4", "--host",
                                "10.0.0.1:1,n2:3", "-x", "FERRY_MPI_STORE", "-x", "FERRY_MPI_JOB", "-x",
                                "FERRY_CLI_PATH", "/bin/proxy", "--restore", "/s/gen-000002", "--", "./app", "7"};
  EXPECT_EQ(cmd, want);
  auto back = mpi_launch_from_json(to_json(l));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->mpirun_options, l.mpirun_options);
  EXPECT_FALSE(mpi_launch_from_json("{\"program\": 3}"));
}

proto::MpiRunEnded ended(int status, std::vector<proto::MpiRankEnd> ranks) {
  return proto::MpiRunEnded{"7", 0, status, std::move(ranks)};
}

TEST(MpiJobs, FoldEarliestAbnormalEnd) {
  std::map<std::uint32_t, std::string> place{{0, "n1"}, {1, "n1"}, {2, "n2"}, {3, "n2"}};
  // rank 2 aborts first; the ranks mpirun kills afterwards do not count.
  auto r = fold_mpi_run(5, "7", place,
                        ended(3, {{2, "h2", MpiEnd::aborted, 3, std::nullopt, "", 10},
                                  {0, "h1", MpiEnd::signaled, 15, std::nullopt, "", 11}}),
                        std::nullopt);
  EXPECT_EQ(r.outcome, Outcome::exited);
  EXPECT_EQ(r.exit_status, 3);
  EXPECT_EQ(r.rank, 2u);
  EXPECT_EQ(r.node, "n2");
  EXPECT_EQ(r.reason, "MPI_Abort");
  EXPECT_EQ(r.restart_id, 5u);
  r = fold_mpi_run(5, "7", place, ended(139, {{1, "h1", MpiEnd::signaled, 11, std::nullopt, "", 4}}), std::nullopt);
  EXPECT_EQ(r.outcome, Outcome::signaled);
  EXPECT_EQ(r.signal, 11);
  EXPECT_EQ(r.rank, 1u);
  r = fold_mpi_run(5, "7", place, ended(0, {{0, "h1", MpiEnd::exited, 0, std::nullopt, "", 4}}), std::nullopt);
  EXPECT_EQ(r.outcome, Outcome::exited);
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_FALSE(r.rank);
}

TEST(MpiJobs, FoldRestoreFailureStopAndSilence) {
  std::map<std::uint32_t, std::string> place{{0, "n1"}, {1, "n2"}};
  auto r = fold_mpi_run(6, "7", place,
                        ended(1, {{0, "h1", MpiEnd::signaled, 9, std::nullopt, "", 1},
                                  {1, "h2", MpiEnd::restart_failed, 0, proto::RestartPhase::validate, "image corrupt", 2}}),
                        std::nullopt);
  EXPECT_EQ(r.outcome, Outcome::restart_failed);
  EXPECT_EQ(r.phase, proto::RestartPhase::validate);
  EXPECT_EQ(r.rank, 1u);
  EXPECT_EQ(r.node, "n2");
  EXPECT_EQ(r.reason, "image corrupt");
  r = fold_mpi_run(6, "7", place, ended(0, {{0, "h1", MpiEnd::exited, 0, std::nullopt, "", 1}}), 3);
  EXPECT_EQ(r.exit_status, 75);
  r = fold_mpi_run(6, "7", place, ended(137, {}), std::nullopt);
  EXPECT_EQ(r.outcome, Outcome::signaled);
  EXPECT_EQ(r.signal, 9);
  ASSERT_TRUE(r.reason);
  EXPECT_NE(r.reason->find("no rank reported"), std::string::npos);
}

// The event files the proxies write (read by the head agent and by `ferry mpirun` alone, then
// folded by fold_mpi_run): earliest first, malformed lines and other files skipped.
TEST(MpiJobs, ReadsTheProxiesEventFilesEarliestFirst) {
  auto dir = std::filesystem::temp_directory_path() / ("ferry-mpi-events-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto put = [&](const std::string& name, const std::string& line) { std::ofstream(dir / name) << line << "\n"; };
  put("rank-0.event", "300 h1 exited 0");
  put("rank-2.event", "100 h2 signaled 11");
  put("rank-1.event", "200 h1 restart_failed validate bad image: chunk 3");
  put("rank-3.event", "garbage");
  put("rank-3.host", "h2");
  auto ev = read_mpi_events(dir.string());
  std::filesystem::remove_all(dir);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].rank, 2u);
  EXPECT_EQ(ev[0].kind, MpiEnd::signaled);
  EXPECT_EQ(ev[0].value, 11);
  EXPECT_EQ(ev[0].node, "h2");
  EXPECT_EQ(ev[1].kind, MpiEnd::restart_failed);
  EXPECT_EQ(ev[1].phase, proto::RestartPhase::validate);
  EXPECT_EQ(ev[1].reason, "bad image: chunk 3");
  EXPECT_EQ(ev[2].rank, 0u);
  proto::MpiRunEnded m{.job = "1", .restart_id = 1, .launcher_status = 0, .ranks = ev};
  auto r = fold_mpi_run(1, "1", {}, m, std::nullopt);
  EXPECT_EQ(r.outcome, Outcome::restart_failed);
  EXPECT_EQ(r.rank, 1u);
  EXPECT_EQ(r.node, "h1");
  EXPECT_FALSE(parse_mpi_event(0, "1 h1 exited notanumber"));
  EXPECT_FALSE(parse_mpi_event(0, "1 h1 vanished 3"));
}

}  // namespace
}  // namespace ferry::coord
