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
//
// Under `ferry mpirun` (FERRY_MPI_STORE, FERRY_MPI_JOB and FERRY_CLI_PATH set) the application
// runs under a rank supervisor instead (rank_link.hpp: `ferry rank-launch`, in its own PID
// namespace), rank 0 keeps a TCP link to `ferry mpirun`, and the loop also takes checkpoint
// orders (rank 0 from the front end, the others from rank 0 over `ctl`, a duplicate of
// MPI_COMM_WORLD) and runs checkpoint.cpp. With --restore GEN_DIR the proxy instead rebuilds the
// lower-half state saved in GEN_DIR/rank-R/mpi-lower.state, has `ferry rank-restore` restore the
// application, and tells the restored upper half where its new channel is (the `moved` record
// written into the application's copy of the old channel, found in /proc/PID/maps).
//
// Outcome events (FERRY_MPI_RUN_DIR set by `ferry mpirun`, cli/mpi_job.hpp): at start the proxy
// writes RUN_DIR/rank-R.host (its node name); when its rank ends it writes RUN_DIR/rank-R.event,
// one line "TIME_NS NODE KIND VALUE [REASON]" with KIND exited STATUS | signaled SIGNAL |
// aborted CODE (MPI_Abort, wrapped below) | restart_failed PHASE REASON (the rank's restore
// failed). The file is created exclusively: the first event of a rank is its event. `ferry
// mpirun` folds the events of all ranks into the run's outcome record. Written from the SIGCHLD
// handler too, so the writer uses only async-signal-safe calls on preformatted buffers.
//
// The serving loop never blocks in the real library (server.hpp): it starts the call the
// application posted, advances the active one with MPI_Test (yielding, then sleeping up to
// 0.5 ms between tests while nothing happens), and sleeps on the request doorbell for at most
// 10 ms when idle, so orders are noticed within that time.
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

#include <sys/uio.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "checkpoint.hpp"
#include "mpi/channel/channel.hpp"
#include "rank_link.hpp"
#include "server.hpp"

extern char** environ;

namespace {

enum AppState : int { kBeforeInit = 0, kInMpi = 1, kFinalized = 2, kCheckpointing = 3 };

volatile sig_atomic_t g_child = 0;
std::atomic<int> g_state{kBeforeInit};
std::atomic<int> g_app_exited{0};
std::atomic<int> g_app_status{0};

bool g_supervised = false;  // the child is a rank supervisor: it exits 128+N for signal N

// Outcome event file (see the top of this file); empty path: not under `ferry mpirun`.
char g_event_path[4096] = {};
char g_event_node[256] = {};

void append_str(char* buf, std::size_t cap, std::size_t& len, const char* s) {
  while (*s != '\0' && len + 1 < cap) buf[len++] = *s++;
  buf[len] = '\0';
}

void append_num(char* buf, std::size_t cap, std::size_t& len, long long v) {
  char digits[24];
  int n = 0;
  bool neg = v < 0;
  unsigned long long u = neg ? 0ULL - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
  do {
    digits[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0 && n < 23);
  if (neg && len + 1 < cap) buf[len++] = '-';
  while (n > 0 && len + 1 < cap) buf[len++] = digits[--n];
  buf[len] = '\0';
}

// Async-signal-safe: the first event of this rank wins (O_EXCL).
void record_event(const char* kind, const char* value, long long number, const char* reason) {
  if (g_event_path[0] == '\0') return;
  int fd = open(g_event_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return;
  char line[2048];
  std::size_t len = 0;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  append_num(line, sizeof line, len, static_cast<long long>(now.tv_sec) * 1000000000LL + now.tv_nsec);
  append_str(line, sizeof line, len, " ");
  append_str(line, sizeof line, len, g_event_node[0] != '\0' ? g_event_node : "?");
  append_str(line, sizeof line, len, " ");
  append_str(line, sizeof line, len, kind);
  append_str(line, sizeof line, len, " ");
  if (value != nullptr) append_str(line, sizeof line, len, value);
  else append_num(line, sizeof line, len, number);
  if (reason != nullptr) {
    append_str(line, sizeof line, len, " ");
    for (const char* r = reason; *r != '\0' && len + 2 < sizeof line; ++r) line[len++] = *r == '\n' ? ' ' : *r;
  }
  line[len++] = '\n';
  ssize_t ignored = write(fd, line, len);
  (void)ignored;
  fsync(fd);
  close(fd);
}

void setup_events(int world_rank) {
  const char* run = std::getenv("FERRY_MPI_RUN_DIR");
  if (run == nullptr || *run == '\0') return;
  // The node's name as the batch system knows it (Slurm's simulated or multi-slurmd nodes share
  // one hostname), else the host's name.
  const char* slurm_node = std::getenv("SLURMD_NODENAME");
  if (slurm_node != nullptr && *slurm_node != '\0')
    std::snprintf(g_event_node, sizeof g_event_node, "%s", slurm_node);
  else
    gethostname(g_event_node, sizeof g_event_node - 1);
  for (char* c = g_event_node; *c != '\0'; ++c)
    if (*c == ' ') *c = '_';
  std::string base = std::string(run) + "/rank-" + std::to_string(world_rank);
  if (base.size() + 8 >= sizeof g_event_path) return;
  std::snprintf(g_event_path, sizeof g_event_path, "%s.event", base.c_str());
  std::string host = base + ".host";
  int fd = open(host.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    std::string line = std::string(g_event_node) + "\n";
    ssize_t ignored = write(fd, line.data(), line.size());
    (void)ignored;
    close(fd);
  }
}

[[noreturn]] void exit_like(int status) {
  bool signaled = WIFSIGNALED(status);
  int sig = signaled ? WTERMSIG(status) : 0;
  if (g_supervised && WIFEXITED(status) && WEXITSTATUS(status) > 128 && WEXITSTATUS(status) < 128 + 65 &&
      WEXITSTATUS(status) != 128 + SIGKILL) {
    signaled = true;
    sig = WEXITSTATUS(status) - 128;
  }
  if (signaled) {
    record_event("signaled", nullptr, sig, nullptr);
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
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  record_event("exited", nullptr, code, nullptr);
  _exit(code);
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
               "ferry-mpi-proxy: %s\nusage: ferry-mpi-proxy [--upper-dir DIR] [--restore GEN_DIR] -- PROGRAM [ARGS...]\n",
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

std::string env_or(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// Start addresses of every mapping of a ferry channel memfd in process `pid`, except those of
// the memfd `own_fd` (this proxy's own channel, once the application attached it).
std::vector<std::uint64_t> old_channel_mappings(pid_t pid, int own_fd) {
  struct stat own{};
  unsigned long own_ino = fstat(own_fd, &own) == 0 ? static_cast<unsigned long>(own.st_ino) : 0;
  std::vector<std::uint64_t> out;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("/memfd:ferry-mpi-channel") == std::string::npos) continue;
    // start-end perms offset dev inode path
    char range[64] = {}, perms[8] = {}, offset[32] = {}, dev[16] = {};
    unsigned long ino = 0;
    if (std::sscanf(line.c_str(), "%63s %7s %31s %15s %lu", range, perms, offset, dev, &ino) == 5 && ino == own_ino &&
        own_ino != 0)
      continue;
    out.push_back(std::stoull(line.substr(0, line.find('-')), nullptr, 16));
  }
  return out;
}

// Writes the `moved` record (channel.hpp) into each old channel the restored application maps:
// relay = this proxy's channel, then moved = 1.
bool announce_new_channel(pid_t app, int fd, std::string* why) {
  auto starts = old_channel_mappings(app, fd);
  if (starts.empty()) {
    *why = "the restored application maps no ferry channel";
    return false;
  }
  for (std::uint64_t start : starts) {
    std::int32_t relay[2] = {static_cast<std::int32_t>(getpid()), fd};
    std::uint32_t moved = 1;
    iovec local{relay, sizeof relay};
    iovec remote{reinterpret_cast<void*>(start + offsetof(ferry::mpi::channel::Header, relay_pid)), sizeof relay};
    static_assert(offsetof(ferry::mpi::channel::Header, relay_fd) == offsetof(ferry::mpi::channel::Header, relay_pid) + 4);
    if (process_vm_writev(app, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof relay)) {
      *why = std::string("write the new channel's address into the application: ") + std::strerror(errno);
      return false;
    }
    iovec l2{&moved, sizeof moved};
    iovec r2{reinterpret_cast<void*>(start + offsetof(ferry::mpi::channel::Header, moved)), sizeof moved};
    if (process_vm_writev(app, &l2, 1, &r2, 1, 0) != static_cast<ssize_t>(sizeof moved)) {
      *why = std::string("mark the old channel moved: ") + std::strerror(errno);
      return false;
    }
  }
  return true;
}

// Clears the `moved` records of the old channels the application still maps (it has not acted
// on them yet: a checkpoint taken soon after a restart). A checkpoint does this before it
// freezes the application, so that its image never carries a `moved` record naming this proxy:
// restored by a later run, the application would otherwise act on that stale record (relay =
// a proxy killed since, or a process that reused its pid) before the new proxy announces
// itself. announce_new_channel() puts the records back when the application resumes here.
void withdraw_moved_records(pid_t app, int fd) {
  for (std::uint64_t start : old_channel_mappings(app, fd)) {
    std::uint32_t moved = 0;
    iovec local{&moved, sizeof moved};
    iovec remote{reinterpret_cast<void*>(start + offsetof(ferry::mpi::channel::Header, moved)), sizeof moved};
    if (process_vm_writev(app, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof moved))
      std::fprintf(stderr, "ferry-mpi-proxy: clear the moved record of an old channel: %s\n", std::strerror(errno));
  }
}

// MPI_Abort, whether the application's (Op::abort in server.cpp) or the proxy's own: the
// executable's definition takes precedence over libmpi's (the profiling interface), so the
// rank's event says who aborted with which code before the real PMPI_Abort ends the job.
extern "C" int MPI_Abort(MPI_Comm comm, int errorcode) {
  record_event("aborted", nullptr, errorcode, nullptr);
  return PMPI_Abort(comm, errorcode);
}

[[noreturn]] void die(const std::string& why, int code) {
  std::fprintf(stderr, "ferry-mpi-proxy: %s\n", why.c_str());
  MPI_Abort(MPI_COMM_WORLD, code);
  _exit(code);
}

// A restore that fails: the rank's event names the phase ("validate" when the image was
// refused before anything was restored, else "restore") and why, then the job is aborted.
[[noreturn]] void restore_failed(const std::string& why, int code, const char* known_phase = nullptr) {
  std::string phase = known_phase != nullptr ? known_phase : why.rfind("validate ", 0) == 0 ? "validate" : "restore";
  std::string reason = why;
  // "PHASE error CODE MESSAGE" from the rank supervisor: keep MESSAGE.
  if (reason.rfind(phase + " error ", 0) == 0) {
    auto sp = reason.find(' ', phase.size() + 7);
    reason = sp == std::string::npos ? reason : reason.substr(sp + 1);
  }
  record_event("restart_failed", phase.c_str(), 0, reason.c_str());
  die(why, code);
}

int main(int argc, char** argv) {
  std::string upper_dir, restore_dir;
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
    } else if (arg == "--restore" && first + 1 < argc) {
      restore_dir = argv[++first];
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
  const std::string store = env_or("FERRY_MPI_STORE"), job = env_or("FERRY_MPI_JOB"),
                    ferry_cli = env_or("FERRY_CLI_PATH");
  g_supervised = !store.empty() && !job.empty() && !ferry_cli.empty();
  if (!restore_dir.empty() && !g_supervised) usage_error("--restore needs FERRY_MPI_STORE, FERRY_MPI_JOB and FERRY_CLI_PATH");

  MPI_Init(&argc, &argv);
  int world_rank = 0, world_size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  if (g_supervised) setup_events(world_rank);

  int fd = -1;
  ferry::mpi::channel::Layout* layout = ferry::mpi::channel::create(&fd);
  auto policy = ferry::mpi::channel::WaitPolicy::from_env();
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
                            std::strlen(ferry::mpi::channel::kChannelEnv)) != 0 &&
               std::strncmp(*e, "FERRY_MPI_TOKEN=", 16) != 0) {
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

  namespace ch = ferry::mpi::channel;
  namespace px = ferry::mpi::proxy;
  px::Server server(layout);
  px::RankSupervisor supervisor;
  px::FrontLink front;
  MPI_Comm ctl = MPI_COMM_NULL;
  if (g_supervised) {
    MPI_Comm_dup(MPI_COMM_WORLD, &ctl);
    if (!restore_dir.empty()) {
      std::string rank_dir = restore_dir + "/rank-" + std::to_string(world_rank);
      std::ifstream in(rank_dir + "/mpi-lower.state", std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      std::string why;
      if (!in || !server.restore(bytes.str(), &why)) restore_failed("restore rank " + std::to_string(world_rank) + " from " + rank_dir + ": " + (why.empty() ? "cannot read mpi-lower.state" : why), 86, "validate");
    }
    std::string why;
    if (world_rank == 0 && !front.connect_from_env(world_size, &why)) std::fprintf(stderr, "ferry-mpi-proxy: no checkpoints: %s\n", why.c_str());
    std::vector<std::string> app_argv_s(argv + first, argv + argc);
    app_argv_s[0] = program;
    // The supervisor needs our environment for itself; the application's is env_strings.
    g_state.store(restore_dir.empty() ? kBeforeInit : kInMpi);
    if (!supervisor.start(ferry_cli, store, job, world_rank, app_argv_s,
                          restore_dir.empty() ? "" : restore_dir + "/rank-" + std::to_string(world_rank), env_strings, &why)) {
      if (!restore_dir.empty()) restore_failed(why, 86);
      die("rank " + std::to_string(world_rank) + ": " + why, 71);
    }
    g_child = supervisor.child();
    // The supervisor may already have ended (a program that fails at once): reap it now.
    on_sigchld(SIGCHLD);
    // FERRY_TEST_ANNOUNCE_DELAY_MS: the tests stand for a proxy that is scheduled late after the
    // restore (a loaded node): the restored application runs that long before `moved` is set.
    if (const char* delay = std::getenv("FERRY_TEST_ANNOUNCE_DELAY_MS"); delay != nullptr && !restore_dir.empty())
      usleep(static_cast<useconds_t>(std::atoi(delay)) * 1000);
    if (!restore_dir.empty() && !announce_new_channel(supervisor.app(), fd, &why))
      restore_failed("rank " + std::to_string(world_rank) + ": " + why, 86);
    server.set_app(supervisor.app());
  } else {
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
    server.set_app(child);
  }
  // fd stays open: an application that closed its copy before MPI_Init attaches through
  // /proc/<proxy pid>/fd/<fd> (and so does a restored application).

  auto post_reply = [&](std::uint32_t seq) {
    if (layout->call.op == ch::Op::hello) g_state.store(kInMpi);
    if (server.finalized()) g_state.store(kFinalized);
    ch::post(layout->response, seq);
  };
  auto pump = [&] {
    if (server.busy() && server.progress(layout->reply)) post_reply(server.active_seq());
  };
  px::Checkpointer checkpointer(server, supervisor, world_rank == 0 && front.connected() ? &front : nullptr,
                                ctl == MPI_COMM_NULL ? MPI_COMM_WORLD : ctl, pump);
  bool stopped = false;
  auto run_checkpoint = [&](const px::Order& o) {
    g_state.store(kCheckpointing);
    // A restored application that has not yet re-attached: its image must not carry our
    // `moved` record (see withdraw_moved_records); put back below if it resumes here.
    bool relayed = !restore_dir.empty() && !old_channel_mappings(supervisor.app(), fd).empty();
    if (relayed) withdraw_moved_records(supervisor.app(), fd);
    px::Decision d = checkpointer.run(o);
    if (relayed && d != px::Decision::stop) {
      std::string why;
      if (!announce_new_channel(supervisor.app(), fd, &why) && why.find("maps no ferry channel") == std::string::npos)
        std::fprintf(stderr, "ferry-mpi-proxy: after the checkpoint: %s\n", why.c_str());
    }
    if (g_app_exited.load() && d != px::Decision::stop) exit_like(g_app_status.load());
    g_state.store(kInMpi);
    if (d == px::Decision::stop) stopped = true;
  };

  std::uint32_t last_seq = 0;
  unsigned idle = 0, polls = 0;
  while (!stopped && !server.finalized()) {
    // Orders.
    if (ctl != MPI_COMM_NULL && (++polls % 64 == 0 || idle > 0)) {
      px::Order o;
      if (world_rank == 0 ? checkpointer.poll_front(o) : checkpointer.poll_order(o)) {
        if (world_rank == 0 && server.finishing())
          front.send_line("failed " + std::to_string(o.round) + " the job is finishing (MPI_Finalize)");
        else
          run_checkpoint(o);
      }
      if (stopped) break;
    }
    // The application's calls.
    bool did = false;
    if (server.busy()) {
      if (server.progress(layout->reply)) {
        post_reply(server.active_seq());
        did = true;
      }
    } else {
      std::uint32_t seq = layout->request.seq.load(std::memory_order_acquire);
      if (seq != last_seq) {
        last_seq = seq;
        if (server.start(seq, layout->call, layout->reply)) post_reply(seq);
        did = true;
      }
    }
    if (did) {
      idle = 0;
      continue;
    }
    if (g_app_exited.load() != 0) break;  // the application ended outside MPI
    if (server.busy()) {
      if (++idle < 64) {
        sched_yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(idle < 256 ? 20 : 500));
      }
    } else {
      std::uint32_t seen = layout->request.seq.load(std::memory_order_acquire);
      if (seen == last_seq) {
        for (std::uint32_t n = 0; n < policy.spins && layout->request.seq.load(std::memory_order_acquire) == last_seq; ++n)
          __builtin_ia32_pause();
        layout->request.sleeping.store(1, std::memory_order_seq_cst);
        if (layout->request.seq.load(std::memory_order_seq_cst) == last_seq)
          ch::futex_wait_for(layout->request.seq, last_seq, ctl != MPI_COMM_NULL ? 10'000'000 : 100'000'000);
        layout->request.sleeping.store(0, std::memory_order_relaxed);
      }
      idle = 1;
    }
  }
  checkpointer.release_sends();
  if (server.finalized() || stopped) {
    g_state.store(kFinalized);
    MPI_Finalize();
  }
  while (g_app_exited.load() == 0) usleep(2000);
  if (stopped) {
    record_event("exited", nullptr, 0, "stopped after a checkpoint");
    _exit(0);
  }
  if (g_state.load() != kFinalized) MPI_Finalize();
  exit_like(g_app_status.load());
}
