// SPDX-License-Identifier: Apache-2.0
// ferry-mpi-proxy: one rank's lower half (transport 1). Launched by the real mpirun in place of
// the application (`mpirun -np N ferry-mpi-proxy -- ./app args`), it calls MPI_Init, creates the
// shared-memory channel, starts the application as its child with LD_LIBRARY_PATH pointing at
// ferry's libmpi.so.40 (the upper half) and the channel's memfd inherited, then serves the
// application's calls until MPI_Finalize, and exits with the application's status.
//
// Algorithm (exit paths): a SIGCHLD handler reaps the application. If it ends while it is inside
// MPI (after MPI_Init, before MPI_Finalize) the proxy leaves at once with the same status,
// without MPI_Finalize, so mpirun ends the job exactly as it would for the plain program (the
// proxy may be blocked inside the real library then, which is why this happens in the handler).
// If it ends before calling MPI_Init (a non-MPI program) or after MPI_Finalize, the proxy
// finalises if needed and exits with its status (a signal is re-raised on the proxy).
// The application gets PR_SET_PDEATHSIG=SIGKILL: it never outlives its proxy. It inherits the
// descriptors mpirun gave the proxy and the channel, nothing that MPI_Init opened.
#include <dirent.h>
#include <fcntl.h>
#include <mpi.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mpi/channel/channel.hpp"
#include "server.hpp"

extern char** environ;

namespace {

enum AppState : int { kBeforeInit = 0, kInMpi = 1, kFinalized = 2 };

volatile sig_atomic_t g_child = 0;
std::atomic<int> g_state{kBeforeInit};
std::atomic<int> g_app_exited{0};
std::atomic<int> g_app_status{0};

[[noreturn]] void exit_like(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, nullptr);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, nullptr);
    raise(sig);
    _exit(128 + sig);
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

void on_sigchld(int) {
  int saved = errno;
  int status = 0;
  if (g_child > 0 && waitpid(g_child, &status, WNOHANG) == g_child) {
    if (g_state.load() == kInMpi) exit_like(status);
    g_app_status.store(status);
    g_app_exited.store(1);
  }
  errno = saved;
}

[[noreturn]] void usage_error(const char* why) {
  std::fprintf(stderr,
               "ferry-mpi-proxy: %s\nusage: ferry-mpi-proxy [--upper-dir DIR] -- PROGRAM [ARGS...]\n",
               why);
  std::exit(64);
}

// Descriptors this process holds now, above stderr (read before MPI_Init: what mpirun gave the
// rank, which the application must inherit like a plain rank does).
std::vector<int> open_descriptors() {
  std::vector<int> fds;
  if (DIR* dir = opendir("/proc/self/fd")) {
    int own = dirfd(dir);
    while (dirent* e = readdir(dir)) {
      int fd = std::atoi(e->d_name);
      if (e->d_name[0] != '.' && fd > 2 && fd != own) fds.push_back(fd);
    }
    closedir(dir);
  }
  std::sort(fds.begin(), fds.end());
  return fds;
}

// In the forked child: closes every descriptor above stderr except `keep` (sorted), so the
// application inherits none of Open MPI's sockets and pipes (they are not close-on-exec).
// close_range only: async-signal-safe.
void close_all_but(const std::vector<int>& keep) {
  unsigned int next = 3;
  for (int fd : keep) {
    if (static_cast<unsigned int>(fd) > next) close_range(next, static_cast<unsigned int>(fd) - 1, 0);
    next = static_cast<unsigned int>(fd) + 1;
  }
  close_range(next, ~0U, 0);
}

std::string dir_of_self() {
  std::vector<char> buf(4096);
  ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return ".";
  std::string path(buf.data(), static_cast<std::size_t>(n));
  return path.substr(0, path.rfind('/'));
}

bool is_executable(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// PATH lookup done before fork: the child of a multithreaded process may only make
// async-signal-safe calls until it execs.
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (is_executable(candidate)) return candidate;
    start = end + 1;
  }
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  std::string upper_dir;
  if (const char* env = std::getenv("FERRY_MPI_UPPER_DIR"); env != nullptr && *env != '\0') upper_dir = env;
  int first = 1;
  for (; first < argc; ++first) {
    std::string arg = argv[first];
    if (arg == "--") {
      ++first;
      break;
    }
    if (arg == "--upper-dir" && first + 1 < argc) {
      upper_dir = argv[++first];
    } else {
      usage_error(("unknown option " + arg).c_str());
    }
  }
  if (first >= argc) usage_error("no program given");
  if (upper_dir.empty()) upper_dir = dir_of_self() + "/ferry-mpi-upper";
  if (access((upper_dir + "/libmpi.so.40").c_str(), R_OK) != 0) {
    std::fprintf(stderr, "ferry-mpi-proxy: no libmpi.so.40 in %s (the upper half; set --upper-dir)\n",
                 upper_dir.c_str());
    return 69;
  }
  std::string program = resolve_program(argv[first]);
  std::vector<int> keep_fds = open_descriptors();

  MPI_Init(&argc, &argv);

  int fd = -1;
  ferry::mpi::channel::Layout* layout = ferry::mpi::channel::create(&fd);
  if (layout == nullptr) {
    std::fprintf(stderr, "ferry-mpi-proxy: create the channel: %s\n", std::strerror(errno));
    MPI_Abort(MPI_COMM_WORLD, 71);
  }
  keep_fds.insert(std::upper_bound(keep_fds.begin(), keep_fds.end(), fd), fd);

  // The application's environment: ours, plus the channel and the upper half's directory first.
  std::vector<std::string> env_strings;
  std::string old_path;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "LD_LIBRARY_PATH=", 16) == 0) {
      old_path = *e + 16;
    } else if (std::strncmp(*e, ferry::mpi::channel::kChannelEnv,
                            std::strlen(ferry::mpi::channel::kChannelEnv)) != 0) {
      env_strings.emplace_back(*e);
    }
  }
  env_strings.push_back("LD_LIBRARY_PATH=" + upper_dir + (old_path.empty() ? "" : ":" + old_path));
  env_strings.push_back(std::string(ferry::mpi::channel::kChannelEnv) + "=" + std::to_string(getpid()) +
                        ":" + std::to_string(fd));
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> app_argv(argv + first, argv + argc);
  app_argv.push_back(nullptr);

  struct sigaction sa {};
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGCHLD, &sa, nullptr);

  pid_t proxy_pid = getpid();
  pid_t child = fork();
  if (child < 0) {
    std::fprintf(stderr, "ferry-mpi-proxy: fork: %s\n", std::strerror(errno));
    MPI_Abort(MPI_COMM_WORLD, 71);
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != proxy_pid) _exit(1);
    close_all_but(keep_fds);
    fcntl(fd, F_SETFD, 0);
    execve(program.c_str(), app_argv.data(), envp.data());
    const char msg[] = "ferry-mpi-proxy: cannot execute the program\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
  }
  g_child = child;
  // fd stays open: an application that closed its copy before MPI_Init attaches through
  // /proc/<proxy pid>/fd/<fd> (and so can a restored application, later).

  ferry::mpi::proxy::Server server(layout, child);
  auto policy = ferry::mpi::channel::WaitPolicy::from_env();
  for (std::uint32_t seq = 1;; ++seq) {
    if (!ferry::mpi::channel::wait_for(layout->request, seq, policy, [] { return g_app_exited.load() == 0; })) {
      break;  // the application ended outside MPI
    }
    bool more = server.serve(layout->call, layout->reply);
    if (layout->call.op == ferry::mpi::channel::Op::hello) g_state.store(kInMpi);
    if (!more) g_state.store(kFinalized);
    ferry::mpi::channel::post(layout->response, seq);
    if (!more) break;
  }
  while (g_app_exited.load() == 0) usleep(2000);
  if (g_state.load() != kFinalized) MPI_Finalize();
  exit_like(g_app_status.load());
}
