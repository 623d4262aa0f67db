// SPDX-License-Identifier: Apache-2.0
// Unit tests of the agent's pieces that need no coordinator: rank supervisor command lines,
// control lines and replies of round phases, status lines, node bookkeeping, wait statuses,
// and spawning a process as the job's user with its stdout/stderr files and status pipe.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "node_state.hpp"
#include "rank_control.hpp"
#include "rank_spawn.hpp"

namespace ferry::agent {
namespace {

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

TEST(RankSpawn, LaunchSpecCarriesRankEnvAndFiles) {
  proto::LaunchRanks m;
  m.job = "7";
  m.uid = 1000;
  m.gid = 100;
  m.ntasks = 4;
  m.ranks = {1, 3};
  m.argv = {"./sim", "--steps", "10"};
  m.cwd = "/home/u";
  m.env = {"PATH=/bin", "FERRY_RANK=99", "HOME=/home/u"};
  StorePaths paths{"/s"};
  SpawnSpec s = rank_launch_spec("/opt/ferry", paths, m, 3);
  EXPECT_EQ(s.exe, "/opt/ferry");
  std::vector<std::string> want = {"/opt/ferry", "rank-launch", "--store", "/s", "--job", "7", "--rank", "3",
                                   "--control", "/s/jobs/7/rank-3.sock", "--status-fd", "3", "--agent-fd", "5", "--",
                                   "./sim",
                                   "--steps", "10"};
  EXPECT_EQ(s.argv, want);
  EXPECT_TRUE(has(s.env, "FERRY_RANK=3"));
  EXPECT_FALSE(has(s.env, "FERRY_RANK=99"));
  EXPECT_TRUE(has(s.env, "FERRY_NTASKS=4"));
  EXPECT_TRUE(has(s.env, "FERRY_JOB=7"));
  EXPECT_TRUE(has(s.env, "HOME=/home/u"));
  EXPECT_EQ(s.cwd, "/home/u");
  EXPECT_EQ(s.uid, 1000u);
  EXPECT_EQ(s.gid, 100u);
  EXPECT_EQ(s.stdout_path, "/s/jobs/7/rank-3.out");
  EXPECT_EQ(s.stderr_path, "/s/jobs/7/rank-3.err");
}

TEST(RankSpawn, RestoreSpecPointsAtTheRankDirectory) {
  proto::RestoreRanks m;
  m.job = "7";
  m.ntasks = 2;
  m.restart_id = 5;
  m.generation_dir = "/s/jobs/7/gen-000002";
  SpawnSpec s = rank_restore_spec("/opt/ferry", StorePaths{"/s"}, m, 1);
  EXPECT_EQ(s.argv[1], "rank-restore");
  EXPECT_TRUE(has(s.argv, "/s/jobs/7/gen-000002/rank-1"));
  EXPECT_TRUE(has(s.env, "FERRY_RANK=1"));
}

TEST(RankControl, PhaseLines) {
  using P = proto::RoundPhase;
  EXPECT_EQ(control_line(P::prepare, 2, "/g", 0), std::nullopt);
  EXPECT_EQ(control_line(P::commit, 2, "/g", 0), std::nullopt);
  EXPECT_EQ(control_line(P::quiesce, 2, "/g", 0), "freeze");
  EXPECT_EQ(control_line(P::dump, 2, "/g.partial", 3), "dump 2 /g.partial/rank-3");
  EXPECT_EQ(control_line(P::resume, 2, "", 0), "resume");
  EXPECT_EQ(control_line(P::stop, 2, "", 0), "stop");
  EXPECT_EQ(control_line(P::abort, 2, "/g", 1), "abort /g/rank-1");
  EXPECT_EQ(control_line(P::abort, 2, "", 1), "abort");
}

TEST(RankControl, RepliesBecomeRankResults) {
  auto ok = rank_result(2, proto::RoundPhase::dump, "ok 8413096 8388608 246313258", 999);
  EXPECT_EQ(ok.rank, 2u);
  EXPECT_EQ(ok.code, 0);
  EXPECT_EQ(ok.bytes, 8413096u);
  EXPECT_EQ(ok.duration_ns, 246313258u);
  auto frozen = rank_result(2, proto::RoundPhase::quiesce, "ok 3", 77);
  EXPECT_EQ(frozen.code, 0);
  EXPECT_EQ(frozen.duration_ns, 77u);
  auto err = rank_result(1, proto::RoundPhase::dump, "error 1028 dump job 7 rank 1: No space left on device", 5);
  EXPECT_EQ(err.code, 1028);
  EXPECT_EQ(err.message, "dump job 7 rank 1: No space left on device");
  auto junk = rank_result(1, proto::RoundPhase::resume, "hello", 5);
  EXPECT_EQ(junk.code, 199);
  EXPECT_NE(junk.message.find("hello"), std::string::npos);
  EXPECT_EQ(rank_result(1, proto::RoundPhase::dump, "ok", 5).code, 199);  // dump needs its numbers
}

TEST(RankControl, StatusLines) {
  auto l = parse_status_line("launch ok 4242");
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->ok);
  EXPECT_EQ(l->pid, 4242);
  auto v = parse_status_line("validate ok");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->ok);
  auto e = parse_status_line("validate error 5 file /lib/x.so changed since the checkpoint");
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->ok);
  EXPECT_EQ(e->phase, "validate");
  EXPECT_EQ(e->code, 5);
  EXPECT_EQ(e->message, "file /lib/x.so changed since the checkpoint");
  EXPECT_FALSE(parse_status_line("launch ok"));        // no pid
  EXPECT_FALSE(parse_status_line("restore error x y"));  // no code
  EXPECT_FALSE(parse_status_line("dance ok 1"));
}

TEST(NodeState, OneLiveIncarnationPerRank) {
  NodeState s;
  RankProc p;
  p.job = "7";
  p.rank = 1;
  auto a = s.add(p);
  ASSERT_TRUE(a);
  EXPECT_FALSE(s.add(p));  // starting: still live
  EXPECT_EQ(s.live_ranks(), 0u);
  a->state = RankState::running;
  EXPECT_EQ(s.live_ranks(), 1u);
  p.rank = 2;
  ASSERT_TRUE(s.add(p));
  EXPECT_EQ(s.ranks_of("7").size(), 2u);
  a->state = RankState::exited;
  auto again = s.add(RankProc{.job = "7", .rank = 1, .restart_id = 3});
  ASSERT_TRUE(again);  // a restart replaces the exited incarnation
  EXPECT_EQ(s.find("7", 1)->restart_id, 3u);
  s.remove("7", 1);
  s.remove("7", 2);
  EXPECT_TRUE(s.ranks_of("7").empty());
  EXPECT_FALSE(s.find("7", 1));
}

TEST(NodeState, ExitReports) {
  auto status = [](int code) { return code << 8; };  // WIFEXITED encoding
  EXPECT_EQ(exit_report(status(0)).exit_status, 0);
  EXPECT_EQ(exit_report(status(3)).exit_status, 3);
  EXPECT_EQ(exit_report(status(75)).exit_status, 75);
  auto killed = exit_report(status(128 + 9));
  EXPECT_FALSE(killed.exit_status);
  EXPECT_EQ(killed.signal, 9);
  EXPECT_EQ(exit_report(15).signal, 15);  // the supervisor itself killed by SIGTERM
}

class TempDir : public ::testing::Test {
protected:
  void SetUp() override {
    char t[] = "/tmp/ferry-agent-test-XXXXXX";
    ASSERT_TRUE(::mkdtemp(t));
    dir = t;
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string dir;
};

using SpawnTest = TempDir;

TEST_F(SpawnTest, MakeDirsOwned) {
  auto r = make_dirs_owned(dir + "/a/b/c", ::getuid(), ::getgid());
  ASSERT_TRUE(r) << r.error().message();
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/a/b/c").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(make_dirs_owned(dir + "/a/b/c", ::getuid(), ::getgid()));  // exists: fine
  EXPECT_FALSE(make_dirs_owned("relative/dir", 0, 0));
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST_F(SpawnTest, ChildGetsFilesStatusPipeEnvAndCwd) {
  SpawnSpec s;
  s.exe = "/bin/sh";
  s.argv = {"/bin/sh", "-c", "echo out $FERRY_RANK $(pwd); echo err >&2; echo 'launch ok 12' >&3; ls /proc/self/fd"};
  s.env = {"PATH=/bin:/usr/bin", "FERRY_RANK=5"};
  s.cwd = dir;
  s.uid = ::getuid();
  s.gid = ::getgid();
  s.stdout_path = dir + "/rank-5.out";
  s.stderr_path = dir + "/rank-5.err";
  std::ofstream(s.stdout_path) << "before\n";  // appended to, never truncated
  auto r = spawn_rank(s);
  ASSERT_TRUE(r) << r.error().message();
  int st = 0;
  ASSERT_EQ(::waitpid(r->pid, &st, 0), r->pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  char buf[64] = {};
  ssize_t n = ::read(r->status.get(), buf, sizeof buf - 1);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), "launch ok 12\n");
  std::string out = slurp(s.stdout_path);
  EXPECT_EQ(out.substr(0, out.find("\n", out.find("out")) + 1), "before\nout 5 " + dir + "\n");
  // Only 0-3 (and ls's own directory fd) are open in the child: nothing of ours leaked.
  std::istringstream fds(out.substr(out.find(dir + "\n") + dir.size() + 1));
  int count = 0;
  for (std::string fd; fds >> fd;) ++count;
  EXPECT_LE(count, 5) << out;
  EXPECT_EQ(slurp(s.stderr_path), "err\n");
}

TEST_F(SpawnTest, FailuresBeforeExecNameTheStep) {
  SpawnSpec s;
  s.exe = "/bin/true";
  s.argv = {"/bin/true"};
  s.cwd = dir + "/absent";
  s.uid = ::getuid();
  s.gid = ::getgid();
  s.stdout_path = dir + "/o";
  s.stderr_path = dir + "/e";
  auto r = spawn_rank(s);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("chdir"), std::string::npos) << r.error().message();
  s.cwd = dir;
  s.exe = dir + "/no-such-ferry";
  r = spawn_rank(s);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("exec ferry"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace ferry::agent
