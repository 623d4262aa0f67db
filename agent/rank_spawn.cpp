// SPDX-License-Identifier: Apache-2.0
// Rank supervisor command lines and the fork/exec that starts them as the job's user (see
// rank_spawn.hpp for what the child does, in order).
#include "rank_spawn.hpp"

#include <sys/prctl.h>

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ferry::agent {
namespace {

// Steps of the child before exec, reported with errno when one fails.
enum ChildStep : int { kSetsid = 1, kGroups, kGid, kUid, kChdir, kStdin, kStdout, kStderr, kDup, kExec };

const char* step_name(int step) {
  switch (step) {
    case kSetsid: return "setsid";
    case kGroups: return "setgroups";
    case kGid: return "setgid";
    case kUid: return "setuid";
    case kChdir: return "chdir to the job's directory";
    case kStdin: return "open /dev/null";
    case kStdout: return "open the rank's stdout file";
    case kStderr: return "open the rank's stderr file";
    case kDup: return "set up descriptors";
    case kExec: return "exec ferry";
  }
  return "start";
}

std::vector<std::string> rank_env(const std::vector<std::string>& given, const std::string& job,
                                  std::uint32_t rank, std::uint32_t ntasks) {
  std::vector<std::string> env;
  for (const auto& kv : given)
    if (kv.rfind("FERRY_RANK=", 0) != 0 && kv.rfind("FERRY_NTASKS=", 0) != 0 && kv.rfind("FERRY_JOB=", 0) != 0 &&
        kv.rfind("FERRY_CONTROL=", 0) != 0)
      env.push_back(kv);
  env.push_back("FERRY_RANK=" + std::to_string(rank));
  env.push_back("FERRY_NTASKS=" + std::to_string(ntasks));
  env.push_back("FERRY_JOB=" + job);
  return env;
}

std::vector<std::string> common_args(const std::string& ferry, const char* sub, const StorePaths& store,
                                     const std::string& job, std::uint32_t rank) {
  return {ferry, sub, "--store", store.root, "--job", job, "--rank", std::to_string(rank),
          "--control", store.control_socket(job, rank), "--status-fd", "3", "--agent-fd", "5"};
}

[[noreturn]] void child_fail(int errfd, int step) {
  int msg[2] = {step, errno};
  (void)!::write(errfd, msg, sizeof msg);
  ::_exit(127);
}

}  // namespace

SpawnSpec rank_launch_spec(const std::string& ferry, const StorePaths& store, const proto::LaunchRanks& m,
                           std::uint32_t rank) {
  SpawnSpec s;
  s.exe = ferry;
  s.argv = common_args(ferry, "rank-launch", store, m.job, rank);
  s.argv.push_back("--");
  s.argv.insert(s.argv.end(), m.argv.begin(), m.argv.end());
  s.env = rank_env(m.env, m.job, rank, m.ntasks);
  s.cwd = m.cwd.empty() ? "/" : m.cwd;
  s.uid = m.uid;
  s.gid = m.gid;
  s.stdout_path = store.rank_file(m.job, rank, ".out");
  s.stderr_path = store.rank_file(m.job, rank, ".err");
  return s;
}

SpawnSpec rank_restore_spec(const std::string& ferry, const StorePaths& store, const proto::RestoreRanks& m,
                            std::uint32_t rank) {
  SpawnSpec s;
  s.exe = ferry;
  s.argv = common_args(ferry, "rank-restore", store, m.job, rank);
  s.argv.push_back("--dir");
  s.argv.push_back(m.generation_dir + "/rank-" + std::to_string(rank));
  // The restored program has its own environment (from the image); this one is the
  // supervisor's.
  s.env = rank_env({"PATH=/usr/local/bin:/usr/bin:/bin"}, m.job, rank, m.ntasks);
  s.cwd = "/";
  s.uid = m.uid;
  s.gid = m.gid;
  s.stdout_path = store.rank_file(m.job, rank, ".out");
  s.stderr_path = store.rank_file(m.job, rank, ".err");
  return s;
}

Result<SpawnedRank> spawn_rank(const SpawnSpec& spec) {
  // Everything the child needs is prepared here: after fork it may not allocate.
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const bool drop = ::geteuid() == 0;

  int status[2], errpipe[2];
  if (::pipe2(status, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd status_r(status[0]), status_w(status[1]);
  if (::pipe2(errpipe, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd err_r(errpipe[0]), err_w(errpipe[1]);

  const pid_t agent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    int errfd = err_w.get();
    if (::setsid() < 0) child_fail(errfd, kSetsid);
    if (drop) {
      if (::setgroups(0, nullptr) != 0) child_fail(errfd, kGroups);
      if (::setgid(spec.gid) != 0) child_fail(errfd, kGid);
      if (::setuid(spec.uid) != 0) child_fail(errfd, kUid);
    }
    // After the credential change, which clears the parent-death signal; an agent that died
    // before it was set is noticed by the parent pid.
    if (spec.end_with_agent && (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != agent)) ::_exit(127);
    if (::chdir(spec.cwd.c_str()) != 0) child_fail(errfd, kChdir);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0) child_fail(errfd, kStdin);
    int out = ::open(spec.stdout_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (out < 0) child_fail(errfd, kStdout);
    int err = ::open(spec.stderr_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (err < 0) child_fail(errfd, kStderr);
    // Move everything above the targets first, so no dup2 clobbers a source.
    int hi_in = ::fcntl(in, F_DUPFD_CLOEXEC, 64), hi_out = ::fcntl(out, F_DUPFD_CLOEXEC, 64),
        hi_err = ::fcntl(err, F_DUPFD_CLOEXEC, 64), hi_st = ::fcntl(status_w.get(), F_DUPFD_CLOEXEC, 64),
        hi_ep = ::fcntl(errfd, F_DUPFD_CLOEXEC, 64);
    if (hi_in < 0 || hi_out < 0 || hi_err < 0 || hi_st < 0 || hi_ep < 0) child_fail(errfd, kDup);
    errfd = hi_ep;
    if (::dup2(hi_in, 0) < 0 || ::dup2(hi_out, 1) < 0 || ::dup2(hi_err, 2) < 0 || ::dup2(hi_st, 3) < 0 ||
        ::dup3(hi_ep, 4, O_CLOEXEC) < 0)
      child_fail(errfd, kDup);
    errfd = 4;
    if (spec.agent_fd >= 0) {
      int hi_ag = ::fcntl(spec.agent_fd, F_DUPFD_CLOEXEC, 64);
      if (hi_ag < 0 || ::dup2(hi_ag, 5) < 0) child_fail(errfd, kDup);
      ::close_range(6, ~0U, 0);
    } else {
      ::close_range(5, ~0U, 0);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(spec.exe.c_str(), argv.data(), envp.data());
    child_fail(errfd, kExec);
  }
  status_w.reset();
  err_w.reset();
  int msg[2] = {0, 0};
  ssize_t n;
  do n = ::read(err_r.get(), msg, sizeof msg);
  while (n < 0 && errno == EINTR);
  if (n == sizeof msg) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    return fail_errno(std::string("start rank supervisor: ") + step_name(msg[0]) +
                          (msg[0] == kStdout ? " " + spec.stdout_path
                           : msg[0] == kStderr ? " " + spec.stderr_path
                           : msg[0] == kChdir ? " " + spec.cwd
                           : msg[0] == kExec ? " " + spec.exe
                                             : std::string()) +
                          " as uid " + std::to_string(spec.uid),
                      msg[1]);
  }
  int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pfd < 0) {
    int e = errno;
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    return fail_errno("pidfd_open", e);
  }
  ::fcntl(status_r.get(), F_SETFL, O_NONBLOCK);
  SpawnedRank r;
  r.pid = pid;
  r.status = std::move(status_r);
  r.pidfd = UniqueFd(pfd);
  return r;
}

Result<void> make_dirs_owned(const std::string& dir, uid_t uid, gid_t gid) {
  if (dir.empty() || dir[0] != '/') return fail(errc::protocol, "directory '" + dir + "' is not absolute");
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return fail(Error::from_errno("make directory " + dir, ENOTDIR));
    return {};
  }
  auto slash = dir.find_last_of('/');
  if (slash > 0) FERRY_TRY_VOID(make_dirs_owned(dir.substr(0, slash), uid, gid));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno("make directory " + dir);
  if (::geteuid() == 0 && ::chown(dir.c_str(), uid, gid) != 0) return fail_errno("chown " + dir);
  return {};
}

}  // namespace ferry::agent
