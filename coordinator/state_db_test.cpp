// SPDX-License-Identifier: Apache-2.0
// StateDb on temporary files: CRUD, persistence across close/reopen, in-flight round
// recovery, final restart outcomes, and a child SIGKILLed in the middle of a transaction.
#include "state_db.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

namespace ferry::coord {
namespace {

class StateDbTest : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-statedb-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/coordinator.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static JobRow sample_job(const std::string& name = "sim", std::uint32_t uid = 1000) {
    return JobRow{.name = name, .owner_uid = uid, .owner_gid = uid, .argv = {"./app", "a b", ""},
                  .cwd = "/home/u", .ntasks = 4, .nodes = {"n1", "n2"}, .state = "running",
                  .interval_s = 600, .keep = 3, .created_ns = 123};
  }

  std::string dir_;
  std::string path_;
};

#define ASSERT_OK(expr)                                       \
  do {                                                        \
    auto r_ = (expr);                                         \
    ASSERT_TRUE(r_) << #expr << ": " << r_.error().message(); \
  } while (0)

TEST_F(StateDbTest, OpensWithWalFullAndSchemaVersion) {
  auto db = StateDb::open(path_);
  ASSERT_TRUE(db) << db.error().message();
  EXPECT_EQ(*db->schema_version(), StateDb::kSchemaVersion);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db->handle(), "PRAGMA journal_mode", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  ASSERT_EQ(sqlite3_prepare_v2(db->handle(), "PRAGMA synchronous", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), 2);  // FULL
  sqlite3_finalize(s);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(StateDbTest, RefusesNewerSchema) {
  {
    auto db = StateDb::open(path_);
    ASSERT_TRUE(db);
    ASSERT_EQ(sqlite3_exec(db->handle(), "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  auto db = StateDb::open(path_);
  ASSERT_FALSE(db);
  EXPECT_TRUE(db.error().is(errc::unsupported));
  EXPECT_NE(db.error().message().find("99"), std::string::npos);
}

TEST_F(StateDbTest, JobsByIdNameAndOwner) {
  auto db = StateDb::open(path_);
  ASSERT_TRUE(db);
  auto id = db->create_job(sample_job());
  ASSERT_TRUE(id) << id.error().message();
  auto other = db->create_job(sample_job("sim", 2000));  // same name, other user: fine
  ASSERT_TRUE(other);
  auto dup = db->create_job(sample_job());
  ASSERT_FALSE(dup);
  EXPECT_TRUE(dup.error().is(errc::busy));
  auto by_name = db->job("sim", 1000u);
  ASSERT_TRUE(by_name);
  EXPECT_EQ(by_name->id, *id);
  EXPECT_EQ(by_name->argv, (std::vector<std::string>{"./app", "a b", ""}));
  EXPECT_EQ(by_name->nodes, (std::vector<std::string>{"n1", "n2"}));
  EXPECT_EQ(db->jobs(2000u)->size(), 1u);
  EXPECT_EQ(db->jobs()->size(), 2u);
  ASSERT_OK(db->set_job_state(*id, "stopped"));
  EXPECT_EQ(db->job(*id)->state, "stopped");
  EXPECT_TRUE(db->job("nope").error().is(errc::not_found));
  EXPECT_TRUE(db->set_job_state("999", "x").error().is(errc::not_found));
}

TEST_F(StateDbTest, RoundLifecycleAndPersistenceAcrossReopen) {
  std::string job;
  std::uint64_t restart_id = 0;
  {
    auto db = StateDb::open(path_);
    ASSERT_TRUE(db);
    job = *db->create_job(sample_job());
    ASSERT_OK(db->node_heartbeat("n1", 5));
    ASSERT_OK(db->node_heartbeat("n1", 6));
    EXPECT_EQ(*db->next_generation(job), 1u);
    auto round = db->begin_round({.job = job, .generation = 1, .generation_dir = "/s/gen-000001.partial",
                                  .nodes = {"n1", "n2"}, .started_ns = 10});
    ASSERT_TRUE(round) << round.error().message();
    EXPECT_GT(round->round_id, 0u);
    auto again = db->begin_round({.job = job, .generation = 2, .started_ns = 11});
    ASSERT_FALSE(again);
    EXPECT_TRUE(again.error().is(errc::busy));
    EXPECT_TRUE(db->generations(job)->empty());  // not committed yet
    ASSERT_OK(db->commit_generation(job, 1, 4096, 77));
    EXPECT_TRUE(db->rounds_in_flight()->empty());
    ASSERT_TRUE(db->begin_round({.job = job, .generation = 2, .generation_dir = "/s/gen-000002.partial",
                                 .nodes = {"n2"}, .started_ns = 20}));
    auto rid = db->create_restart(job, 1, 30);
    ASSERT_TRUE(rid);
    restart_id = *rid;
    ASSERT_OK(db->set_restart_phase(restart_id, proto::RestartPhase::restore));
  }  // closed with round 2 in flight, as if the coordinator died
  auto db = StateDb::open(path_);
  ASSERT_TRUE(db);
  auto gens = db->generations(job);
  ASSERT_EQ(gens->size(), 1u);
  EXPECT_EQ((*gens)[0].bytes, 4096u);
  EXPECT_EQ((*gens)[0].duration_ns, 77u);
  EXPECT_TRUE((*gens)[0].committed);
  auto inflight = db->rounds_in_flight();
  ASSERT_EQ(inflight->size(), 1u);
  EXPECT_EQ((*inflight)[0].generation, 2u);
  EXPECT_EQ((*inflight)[0].nodes, std::vector<std::string>{"n2"});
  EXPECT_EQ((*inflight)[0].generation_dir, "/s/gen-000002.partial");
  // Recovery: abort it; the committed generation stays, numbering continues after 2.
  EXPECT_EQ(*db->next_generation(job), 3u);
  ASSERT_OK(db->abort_round(job, 2));
  EXPECT_TRUE(db->rounds_in_flight()->empty());
  EXPECT_EQ(db->generations(job, false)->size(), 1u);
  auto r = db->restart(restart_id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->outcome, proto::Outcome::running);
  EXPECT_EQ(r->phase, proto::RestartPhase::restore);
  EXPECT_EQ(db->nodes()->at(0).last_heartbeat_ns, 6);
}

TEST_F(StateDbTest, RestartOutcomeIsFinalOnceAndOutlivesTheJob) {
  auto db = StateDb::open(path_);
  ASSERT_TRUE(db);
  std::string job = *db->create_job(sample_job());
  auto id = *db->create_restart(job, 1, 1);
  ASSERT_OK(db->record_rank_exit(id, {.rank = 1, .node = "n2", .exit_status = std::nullopt, .signal = 9, .time_ns = 5}));
  ASSERT_OK(db->record_rank_exit(id, {.rank = 0, .node = "n1", .exit_status = 0, .signal = std::nullopt, .time_ns = 4}));
  RestartRow fin{.restart_id = id, .job = job, .outcome = proto::Outcome::signaled,
                 .signal = 9, .rank = 1, .node = "n2", .ended_ns = 6};
  ASSERT_OK(db->finish_restart(fin));
  fin.outcome = proto::Outcome::exited;
  auto second = db->finish_restart(fin);
  ASSERT_FALSE(second);
  EXPECT_TRUE(second.error().is(errc::busy));
  EXPECT_TRUE(db->finish_restart({.restart_id = 999, .outcome = proto::Outcome::exited}).error().is(errc::not_found));
  ASSERT_OK(db->delete_job(job));
  EXPECT_TRUE(db->job(job).error().is(errc::not_found));
  auto r = db->restart(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->outcome, proto::Outcome::signaled);
  EXPECT_EQ(r->signal, 9);
  EXPECT_EQ(r->exit_status, std::nullopt);
  EXPECT_EQ(r->node, "n2");
  EXPECT_EQ(r->ended_ns, 6);
  auto exits = db->rank_exits(id);
  ASSERT_EQ(exits->size(), 2u);
  EXPECT_EQ((*exits)[0].exit_status, 0);
  EXPECT_EQ((*exits)[1].signal, 9);
  EXPECT_EQ(db->restarts(job)->size(), 1u);
}

// Child: commits `batches` transactions, each one job with kGens committed generations, then
// opens one more transaction that writes far more than the page cache holds (so uncommitted
// pages reach the WAL), tells the parent, and waits to be killed.
constexpr int kGens = 20;

[[noreturn]] void child_writer(const std::string& path, int ready_fd, bool hold_open_txn) {
  auto db = StateDb::open(path);
  if (!db) _exit(2);
  sqlite3_exec(db->handle(), "PRAGMA cache_size = -64", nullptr, nullptr, nullptr);  // 64 KiB
  const int batches = hold_open_txn ? 8 : 1000;  // bounded; in the stream, a kill comes first
  for (int b = 0; b < batches; ++b) {
    auto r = db->transaction([&]() -> Result<void> {
      FERRY_TRY(id, db->create_job(JobRow{.name = "j" + std::to_string(b), .argv = {"x"},
                                          .ntasks = 1, .nodes = {"n"}}));
      for (int g = 1; g <= kGens; ++g) {
        FERRY_TRY_VOID(db->begin_round({.job = id, .generation = static_cast<std::uint64_t>(g),
                                        .generation_dir = std::string(200, 'd'), .nodes = {"n"}}));
        FERRY_TRY_VOID(db->commit_generation(id, static_cast<std::uint64_t>(g), 1, 1));
      }
      return {};
    });
    if (!r) _exit(5);
    if (b == 5) {
      char c = 'r';
      if (!hold_open_txn && write(ready_fd, &c, 1) != 1) _exit(3);
    }
  }
  if (hold_open_txn) {
    sqlite3_exec(db->handle(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    for (int i = 0; i < 5000; ++i) {
      std::string sql = "INSERT INTO nodes (name, last_heartbeat_ns) VALUES ('uncommitted-" +
                        std::to_string(i) + "-" + std::string(100, 'x') + "', 1)";
      sqlite3_exec(db->handle(), sql.c_str(), nullptr, nullptr, nullptr);
    }
    char c = 'r';
    if (write(ready_fd, &c, 1) != 1) _exit(3);
  }
  for (int i = 0; i < 600; ++i) sleep(1);  // bounded wait for SIGKILL
  _exit(4);
}

void kill_child_and_check(const std::string& path, bool hold_open_txn) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    child_writer(path, fds[1], hold_open_txn);
  }
  close(fds[1]);
  char c = 0;
  ASSERT_EQ(read(fds[0], &c, 1), 1) << "child failed before it was ready";
  close(fds[0]);
  if (!hold_open_txn) usleep(20'000);  // land somewhere in the stream of transactions
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;

  auto db = StateDb::open(path);
  ASSERT_TRUE(db) << db.error().message();
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db->handle(), "PRAGMA integrity_check", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "ok");
  sqlite3_finalize(s);
  ASSERT_EQ(sqlite3_prepare_v2(db->handle(), "PRAGMA foreign_key_check", -1, &s, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_step(s), SQLITE_DONE) << "dangling references after the kill";
  sqlite3_finalize(s);

  // Every job that exists has all of its generations committed and no round in flight:
  // a transaction is visible whole or not at all.
  auto jobs = db->jobs();
  ASSERT_TRUE(jobs);
  EXPECT_GE(jobs->size(), 6u);  // the batches committed before "ready"
  if (!hold_open_txn) {
    EXPECT_LT(jobs->size(), 1000u) << "the child finished before the kill";
  }
  for (const auto& j : *jobs) {
    auto gens = db->generations(j.id, false);
    ASSERT_TRUE(gens);
    EXPECT_EQ(gens->size(), static_cast<std::size_t>(kGens)) << "job " << j.name;
    for (const auto& g : *gens) EXPECT_TRUE(g.committed);
  }
  EXPECT_TRUE(db->rounds_in_flight()->empty());
  EXPECT_TRUE(db->nodes()->empty());  // the held-open transaction left nothing behind
  // And the database is writable again.
  EXPECT_TRUE(db->create_job(JobRow{.name = "after", .argv = {"y"}, .ntasks = 1}));
}

TEST_F(StateDbTest, SigkillInsideAnOpenTransactionLeavesTheLastCommittedState) {
  kill_child_and_check(path_, true);
}

TEST_F(StateDbTest, SigkillDuringAStreamOfTransactions) {
  kill_child_and_check(path_, false);
}

}  // namespace
}  // namespace ferry::coord
