// SPDX-License-Identifier: Apache-2.0
// `ferry slurm-run [OPTIONS] -- PROGRAM [ARGS...]`: the one line of a Slurm batch script
// (`exec ferry slurm-run -- PROGRAM`, with `#SBATCH --signal=B:USR1@T --requeue`) that makes
// the job survive its time limit and preemption. docs/slurm-user.md is the user's view.
//
// Algorithm (one run of the batch script = one call):
//   - The ferry job is named slurm-<cluster>-<SLURM_JOB_ID>, so every run of a requeued Slurm
//     job finds the same ferry job in the (shared) store. Per-Slurm-job state lives next to
//     it in <store>/slurm/<name>.state (committed generation, restart failures) and every
//     outcome is appended to <store>/slurm/<name>.outcome (and copied to the job's Comment).
//   - First run (SLURM_RESTART_COUNT unset), or a rerun when no generation was ever
//     committed: start the program with `ferry launch --name NAME` (or `ferry mpirun`).
//     A rerun with a committed generation: `ferry restart NAME` (or `ferry mpirun --restart`).
//     The restart child's stderr goes through a pipe that we forward line by line: the line
//     "ferry: job J restarted from generation N" (ferry mpirun: "restarted (mpirun pid P)")
//     marks the point after which the child's exit status is the application's. A child that ends before that line failed to restart:
//     counted in the state; below --max-restart-failures the job is requeued (exit 86), at
//     the limit it fails with status 86 and the reason (or starts fresh with
//     --on-restart-failure fresh).
//   - SIGUSR1 (Slurm's --signal=B:USR1, also sent at preemption with preempt_send_user_signal):
//     `ferry checkpoint NAME --stop` (commit, then the program stops); the generation is
//     recorded, the job's outcome written, then `scontrol requeue $SLURM_JOB_ID` (which kills
//     this script; we exit 0 if it does not). A failed checkpoint is recorded and the program
//     runs on. SIGTERM (time limit reached, scancel) is passed to the child.
//   - The exit status is the application's (0-255, 128+N for a signal), or 86 when the restart
//     failed, so `scontrol show job` / the epilog tell the two apart; the outcome file says why.
//   - The node-local file /run/ferry-slurm/<SLURM_JOB_ID> (if the prolog made the directory)
//     names the outcome file for the epilog, which records runs that ended without one.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "commands.hpp"
#include "exit_status.hpp"
#include "ferry/common/fs.hpp"
#include "generation_lookup.hpp"
#include "job_store.hpp"
#include "options.hpp"

namespace ferry::cli {
namespace {

constexpr int kExitRestartFailed = 86;  // as `ferry wait` (protocol/PROTOCOL.md)
// The line after which the restart child's status is the application's: `ferry restart`
// prints "ferry: job J restarted from generation N (pid P)" once the process is restored;
// `ferry mpirun --restart` prints "ferry: job J restarted (mpirun pid P)" when it has started
// mpirun (a rank that fails to restore after that ends mpirun with a status of its own).
bool is_restarted_line(const std::string& l) {
  return l.rfind("ferry: job ", 0) == 0 &&
         (l.find(" restarted from generation ") != std::string::npos ||
          l.find(" restarted (mpirun pid ") != std::string::npos);
}
constexpr const char* kNodeDir = "/run/ferry-slurm";

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "ferry";
  buf[n] = 0;
  return buf;
}

std::string now_text() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", std::localtime(&t));
  return buf;
}

std::string status_text(int wstatus) {
  if (WIFEXITED(wstatus)) return "exited " + std::to_string(WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus)) return "killed by signal " + std::to_string(WTERMSIG(wstatus));
  return "ended (wait status " + std::to_string(wstatus) + ")";
}

int shell_status(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return kExitInternal;
}

// key=value lines: what one run leaves for the next run of the same Slurm job.
struct SlurmState {
  uint64_t committed_generation = 0;  // newest generation a checkpoint of ours committed
  uint32_t restart_failures = 0;      // consecutive failed restarts

  static SlurmState load(const std::string& path) {
    SlurmState s;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string k = line.substr(0, eq), v = line.substr(eq + 1);
      try {
        if (k == "committed_generation") s.committed_generation = std::stoull(v);
        if (k == "restart_failures") s.restart_failures = static_cast<uint32_t>(std::stoul(v));
      } catch (...) {
      }
    }
    return s;
  }
  Result<void> save(const std::string& path) const {
    std::ostringstream o;
    o << "committed_generation=" << committed_generation << "\nrestart_failures=" << restart_failures << "\n";
    return fs::write_file_atomic(path, o.str(), 0644);
  }
};

// Runs a command to completion with our signal mask restored in the child; returns its wait
// status (or -1 when it could not be started). stdout of the child: /dev/null if quiet.
int run_command(const std::vector<std::string>& argv, const sigset_t& child_mask, bool quiet) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::sigprocmask(SIG_SETMASK, &child_mask, nullptr);
    if (quiet) {
      int fd = ::open("/dev/null", O_WRONLY);
      if (fd >= 0) ::dup2(fd, 1);
    }
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execvp(a[0], a.data());
    ::_exit(127);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return st;
}

class SlurmRun {
 public:
  std::string store_root, name, job_id, node, state_path, outcome_path;
  uint32_t run = 0, max_failures = 3;
  bool fresh_on_failure = false, requeue = true, mpirun = false;
  std::vector<std::string> mpirun_args, program;
  sigset_t child_mask{};  // the mask we had: children get it back

  int main();

 private:
  std::string ferry_ = self_exe();
  pid_t child_ = -1;

  void record(const std::string& what, bool to_comment = true);
  pid_t spawn(const std::vector<std::string>& argv, int stderr_fd);
  std::vector<std::string> launch_argv() const;
  std::vector<std::string> restart_argv() const;
  int supervise(bool restarting, int err_pipe, std::string& last_ferry_line, bool& restored);
  bool checkpoint_and_requeue(int sfd);
  void requeue_job();
  std::optional<uint64_t> newest_generation() const;
};

void SlurmRun::record(const std::string& what, bool to_comment) {
  std::string line = now_text() + " run " + std::to_string(run) + " on " + node + ": " + what;
  std::cerr << "ferry: slurm job " << job_id << " (" << name << ") run " << run << " on " << node << ": " << what
            << "\n";
  if (int fd = ::open(outcome_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644); fd >= 0) {
    std::string l = line + "\n";
    (void)!::write(fd, l.data(), l.size());
    ::fsync(fd);
    ::close(fd);
  }
  if (to_comment && env_or("FERRY_SLURM_COMMENT", "1") != "0") {
    std::string c = "ferry: " + what;
    if (c.size() > 200) c.resize(200);
    run_command({"scontrol", "update", "JobId=" + job_id, "Comment=" + c}, child_mask, true);
  }
}

pid_t SlurmRun::spawn(const std::vector<std::string>& argv, int stderr_fd) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::sigprocmask(SIG_SETMASK, &child_mask, nullptr);
    if (stderr_fd >= 0) {
      ::dup2(stderr_fd, 2);
      ::close(stderr_fd);
    }
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    std::cerr << "ferry: slurm-run: cannot run " << a[0] << ": " << std::strerror(errno) << "\n";
    ::_exit(127);
  }
  return pid;
}

std::vector<std::string> SlurmRun::launch_argv() const {
  std::vector<std::string> a{ferry_, mpirun ? "mpirun" : "launch", "--store", store_root, "--name", name};
  if (mpirun) a.insert(a.end(), mpirun_args.begin(), mpirun_args.end());
  a.push_back("--");
  a.insert(a.end(), program.begin(), program.end());
  return a;
}

std::vector<std::string> SlurmRun::restart_argv() const {
  if (!mpirun) return {ferry_, "restart", "--store", store_root, name};
  std::vector<std::string> a{ferry_, "mpirun", "--store", store_root, "--restart", name};
  a.insert(a.end(), mpirun_args.begin(), mpirun_args.end());
  return a;
}

std::optional<uint64_t> SlurmRun::newest_generation() const {
  auto store = store::JobStore::open(store_root);
  if (!store) return std::nullopt;
  auto job = store->find(name);
  if (!job) return std::nullopt;
  auto gen = find_generation(*store, *job, std::nullopt);
  if (gen) return gen->generation;
  // An MPI job's generation holds a job manifest (kind "job") that find_generation does not
  // read: its newest committed generation is the last one listed.
  auto gens = store->generations(job->id);
  if (!gens || gens->empty()) return std::nullopt;
  return gens->back();
}

void SlurmRun::requeue_job() {
  if (!requeue) return;
  int st = run_command({"scontrol", "requeue", job_id}, child_mask, false);
  // Slurm kills this script once the requeue is done; if we are still here it refused.
  if (st != 0)
    record("scontrol requeue " + job_id + " failed (" + status_text(st) +
               "): was the job submitted with --requeue?",
           true);
}

// Checkpoint on USR1: `ferry checkpoint NAME --stop`; a committed generation -> requeue.
// Returns true when the job was checkpointed (the caller then exits), false to run on.
bool SlurmRun::checkpoint_and_requeue(int sfd) {
  (void)sfd;
  int st = -1;
  // The job may not be registered yet if the signal comes during start-up: retry briefly.
  for (int attempt = 0; attempt < 20; ++attempt) {
    st = run_command({ferry_, "checkpoint", "--store", store_root, name, "--stop"}, child_mask, true);
    if (!(WIFEXITED(st) && (WEXITSTATUS(st) == kExitNotFound || WEXITSTATUS(st) == kExitBusy))) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (st != 0) {
    record("checkpoint on SIGUSR1 failed (ferry checkpoint " + status_text(st) +
           "; see the ferry: line above); the program runs on");
    return false;
  }
  auto gen = newest_generation();
  SlurmState s = SlurmState::load(state_path);
  s.committed_generation = gen.value_or(s.committed_generation ? s.committed_generation : 1);
  s.restart_failures = 0;
  if (auto r = s.save(state_path); !r) complain("slurm-run: " + r.error().message());
  // The stopped program's supervisor exits 75 right after the commit.
  int wst = 0;
  for (int i = 0; i < 300; ++i) {
    pid_t p = ::waitpid(child_, &wst, WNOHANG);
    if (p == child_ || p < 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  record("checkpointed generation " + std::to_string(s.committed_generation) + " on SIGUSR1" +
         (requeue ? "; requeued" : "; not requeued (--no-requeue)"));
  requeue_job();
  return true;
}

// Waits for the child. While restarting, forwards its stderr and watches for the marker.
int SlurmRun::supervise(bool restarting, int err_pipe, std::string& last_ferry_line, bool& restored) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC);
  restored = !restarting;
  bool usr1_pending = false;
  std::string partial;
  for (;;) {
    // Reap first: SIGCHLD may have been merged with another signal.
    int wst = 0;
    pid_t p = ::waitpid(child_, &wst, WNOHANG);
    if (p == child_) {
      // Drain what the child still wrote.
      if (err_pipe >= 0) {
        char buf[4096];
        ssize_t n;
        ::fcntl(err_pipe, F_SETFL, O_NONBLOCK);
        while ((n = ::read(err_pipe, buf, sizeof buf)) > 0) {
          (void)!::write(2, buf, static_cast<size_t>(n));
          partial.append(buf, static_cast<size_t>(n));
        }
        std::istringstream lines(partial);
        std::string l;
        while (std::getline(lines, l)) {
          if (is_restarted_line(l)) restored = true;
          if (l.rfind("ferry:", 0) == 0) last_ferry_line = l;
        }
      }
      if (sfd >= 0) ::close(sfd);
      return wst;
    }
    if (restored && usr1_pending) {
      usr1_pending = false;
      if (checkpoint_and_requeue(sfd)) {
        if (sfd >= 0) ::close(sfd);
        return -1;  // checkpointed (and requeued, unless Slurm already killed us)
      }
    }
    pollfd fds[2] = {{sfd, POLLIN, 0}, {err_pipe, POLLIN, 0}};
    int n = ::poll(fds, err_pipe >= 0 ? 2 : 1, 1000);
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si{};
      if (::read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGUSR1) usr1_pending = true;
        if (si.ssi_signo == SIGTERM) {
          record("SIGTERM (time limit, scancel or node shutdown) before a checkpoint: passed to the program",
                 false);
          ::kill(child_, SIGTERM);
        }
      }
    }
    if (err_pipe >= 0 && n > 0 && (fds[1].revents & (POLLIN | POLLHUP))) {
      char buf[4096];
      ssize_t r = ::read(err_pipe, buf, sizeof buf);
      if (r > 0) {
        (void)!::write(2, buf, static_cast<size_t>(r));
        partial.append(buf, static_cast<size_t>(r));
        size_t nl;
        while ((nl = partial.find('\n')) != std::string::npos) {
          std::string l = partial.substr(0, nl);
          partial.erase(0, nl + 1);
          if (is_restarted_line(l)) restored = true;
          if (l.rfind("ferry:", 0) == 0) last_ferry_line = l;
        }
      } else {
        ::close(err_pipe);
        err_pipe = -1;
      }
    }
  }
  if (sfd >= 0) ::close(sfd);
  int wst = 0;
  ::waitpid(child_, &wst, 0);
  return wst;
}

int SlurmRun::main() {
  SlurmState state = SlurmState::load(state_path);
  if (const char* d = kNodeDir; ::access(d, W_OK) == 0)
    (void)fs::write_file_atomic(std::string(d) + "/" + job_id, outcome_path + "\n", 0644);

  for (;;) {
    const bool restarting = run > 0 && state.committed_generation > 0;
    int err_pipe[2] = {-1, -1};
    if (restarting) {
      if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        complain("slurm-run: pipe: " + std::string(std::strerror(errno)));
        return kExitSystem;
      }
      record("restarting from the newest generation (committed: " + std::to_string(state.committed_generation) +
                 ")",
             true);
      child_ = spawn(restart_argv(), err_pipe[1]);
      ::close(err_pipe[1]);
    } else {
      record(run == 0 ? "launched" : "rerun without a committed generation: launched afresh", true);
      child_ = spawn(launch_argv(), -1);
    }
    if (child_ < 0) {
      complain("slurm-run: fork: " + std::string(std::strerror(errno)));
      return kExitSystem;
    }
    std::string last_ferry_line;
    bool restored = false;
    int wst = supervise(restarting, err_pipe[0], last_ferry_line, restored);
    if (err_pipe[0] >= 0) ::close(err_pipe[0]);
    if (wst == -1) return 0;  // checkpointed and requeued
    if (!restored) {
      state.restart_failures += 1;
      std::string why = last_ferry_line.empty() ? "no ferry: line" : last_ferry_line;
      std::string count =
          "failure " + std::to_string(state.restart_failures) + " of " + std::to_string(max_failures);
      if (state.restart_failures < max_failures) {
        (void)state.save(state_path);
        record("restart failed (" + status_text(wst) + ", " + count + "): " + why + "; requeued");
        std::cerr << "ferry: restart of job " << name << " failed (" << count << "): " << why << "\n";
        requeue_job();
        return kExitRestartFailed;
      }
      if (fresh_on_failure) {
        state = SlurmState{};
        (void)state.save(state_path);
        record("restart failed (" + status_text(wst) + ", " + count + "): " + why +
               "; starting afresh (--on-restart-failure fresh)");
        run = 0;  // launch, not restart
        continue;
      }
      (void)state.save(state_path);
      record("restart failed (" + status_text(wst) + ", " + count + "): " + why + "; given up, not requeued");
      std::cerr << "ferry: restart of job " << name << " failed " << state.restart_failures
                << " times, given up: " << why << "\n";
      return kExitRestartFailed;
    }
    if (restarting && state.restart_failures) {
      state.restart_failures = 0;
      (void)state.save(state_path);
    }
    if (WIFEXITED(wst) && WEXITSTATUS(wst) == kExitStopped) {
      record("program stopped by 'ferry checkpoint --stop' (exit 75): not requeued by ferry");
      return kExitStopped;
    }
    record("program " + status_text(wst));
    return shell_status(wst);
  }
}

}  // namespace

int cmd_slurm_run(const Args& all) {
  auto [ours, program] = split_at_dashdash(all);
  po::options_description opts(
      "ferry slurm-run [--store DIR] [--max-restart-failures N] [--on-restart-failure fail|fresh] "
      "[--mpirun [--mpirun-arg ARG]...] -- PROGRAM [ARGS...]");
  opts.add_options()("help,h", "show this help")("store", po::value<std::string>(),
                                                 "job store on storage every node sees (default: "
                                                 "$FERRY_SLURM_STORE, $FERRY_HOME, ~/.ferry)")(
      "max-restart-failures", po::value<uint32_t>(),
      "fail the job after this many failed restarts in a row (default: $FERRY_SLURM_MAX_RESTART_FAILURES or 3)")(
      "on-restart-failure", po::value<std::string>(),
      "at the limit: fail (default) or fresh (start the program again from the beginning)")(
      "no-requeue", "record the checkpoint but do not call scontrol requeue")(
      "mpirun", "run the program with ferry mpirun instead of ferry launch")(
      "mpirun-arg", po::value<std::vector<std::string>>()->composing(), "an option for ferry mpirun (repeat)");
  po::positional_options_description pos;
  po::variables_map vm;
  if (!parse("slurm-run", ours, opts, pos, vm)) return kExitUsage;
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  if (program.empty()) {
    complain("slurm-run: no program given (ferry slurm-run [OPTIONS] -- PROGRAM [ARGS...])");
    return kExitUsage;
  }
  SlurmRun r;
  r.job_id = env_or("SLURM_JOB_ID", "");
  if (r.job_id.empty()) {
    complain("slurm-run: SLURM_JOB_ID is not set: run it as the step of an sbatch script "
             "(exec ferry slurm-run -- PROGRAM)");
    return kExitUsage;
  }
  std::string cluster = env_or("SLURM_CLUSTER_NAME", "");
  r.name = "slurm-" + (cluster.empty() ? "" : cluster + "-") + r.job_id;
  auto store_opt = opt<std::string>(vm, "store");
  if (!store_opt && std::getenv("FERRY_SLURM_STORE")) store_opt = env_or("FERRY_SLURM_STORE", "");
  r.store_root = store::default_root(store_opt);
  r.node = env_or("SLURMD_NODENAME", "?");
  try {
    r.run = static_cast<uint32_t>(std::stoul(env_or("SLURM_RESTART_COUNT", "0")));
  } catch (...) {
    r.run = 0;
  }
  try {
    r.max_failures = vm.count("max-restart-failures")
                         ? vm["max-restart-failures"].as<uint32_t>()
                         : static_cast<uint32_t>(std::stoul(env_or("FERRY_SLURM_MAX_RESTART_FAILURES", "3")));
  } catch (...) {
    complain("slurm-run: FERRY_SLURM_MAX_RESTART_FAILURES is not a number");
    return kExitUsage;
  }
  if (r.max_failures == 0) r.max_failures = 1;
  std::string on_fail = opt<std::string>(vm, "on-restart-failure").value_or(env_or("FERRY_SLURM_ON_RESTART_FAILURE", "fail"));
  if (on_fail != "fail" && on_fail != "fresh") {
    complain("slurm-run: --on-restart-failure must be fail or fresh, not '" + on_fail + "'");
    return kExitUsage;
  }
  r.fresh_on_failure = on_fail == "fresh";
  r.requeue = !vm.count("no-requeue");
  r.mpirun = vm.count("mpirun") > 0;
  if (vm.count("mpirun-arg")) r.mpirun_args = vm["mpirun-arg"].as<std::vector<std::string>>();
  r.program = program;

  auto store = store::JobStore::open(r.store_root);
  if (!store) {
    complain("slurm-run: " + store.error().message());
    return exit_status_for(store.error());
  }
  std::string dir = r.store_root + "/slurm";
  if (auto d = fs::make_dirs(dir, 0755); !d) {
    complain("slurm-run: " + d.error().message());
    return exit_status_for(d.error());
  }
  r.state_path = dir + "/" + r.name + ".state";
  r.outcome_path = dir + "/" + r.name + ".outcome";

  // Signals are taken through a signalfd; children get the original mask back.
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &block, &r.child_mask);
  return r.main();
}

}  // namespace ferry::cli
