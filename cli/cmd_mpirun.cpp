// SPDX-License-Identifier: Apache-2.0
// `ferry mpirun`: runs an unmodified Open MPI program under checkpoint control (docs/mpi.md).
//
//   ferry mpirun [--store DIR] [--name NAME] [mpirun options] -- PROGRAM [ARGS...]
//   ferry mpirun [--store DIR] --restart JOB [--generation N] [mpirun options]
//
// The front end: creates the job in the store (or finds it, for --restart), listens on a TCP
// port for rank 0's proxy (FERRY_MPI_FRONT=HOST:PORT plus a random FERRY_MPI_TOKEN), runs the
// real mpirun with one ferry-mpi-proxy per rank (`mpirun OPTIONS -x ... ferry-mpi-proxy
// [--restore GEN_DIR] -- PROGRAM ARGS`), serves the job's control socket like `ferry launch`
// does (so `ferry checkpoint JOB [--stop]` works), and exits with mpirun's status (75 after a
// checkpoint --stop).
//
// A checkpoint: begin gen-N.partial; "checkpoint N DIR TIMEOUT_MS ROUND" to rank 0's proxy,
// which runs the job's drain/freeze/dump (mpi/proxy/checkpoint.cpp) with every other proxy;
// "dumped ROUND FAILED IMAGE MEMORY [WHY]" back; when no rank failed, the job manifest (kind
// "job", one entry per rank with the XXH3 of its rank-R/MANIFEST.json, as the coordinator
// writes it) is written and fsynced and the directory renamed (the commit point); then
// "resume|stop ROUND" (or "abort ROUND" after a failure, and the partial directory is removed),
// and the proxies' "done ROUND". A round is bounded (`ferry checkpoint --timeout`, default
// $FERRY_MPI_CHECKPOINT_TIMEOUT_S or 120 s): rank 0 answers "timeout ROUND PHASE MS RANKS"
// when a phase did not complete in time (the proxies have left the round, the job continues);
// if rank 0 itself does not answer within the timeout + kFrontMarginMs, the front end gives up
// ("cancel ROUND") and never commits that round. Either way the partial directory is removed
// and the reply names the phase and the ranks (and nodes) that did not answer. Lines of a round
// that is over are dropped.
// With a coordinator configured (--coordinator, $FERRY_COORDINATOR, the store's config, as
// `ferry launch` decides) a launch goes there instead (LAUNCH_MPI_JOB): the coordinator places
// the ranks on its agents' nodes (--nodes n1,n2 or n1:1,n2:3; default every node), the head
// agent runs mpirun and drives the checkpoints, and this command waits for the job's record
// like `ferry wait`, copying STORE/jobs/ID/mpirun.out/.err (the launcher's output, written on
// the head node into the shared store) to its stdout/stderr meanwhile.
// A restart reads STORE/jobs/ID/mpi.json (the program and the mpirun options it was started
// with; options given to --restart replace them, e.g. another placement) and the newest (or
// given) committed generation, whose job manifest fixes -np.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>
#include <atomic>

#include "cluster_commands.hpp"
#include "commands.hpp"
#include "coordinator_client.hpp"
#include "exit_status.hpp"
#include "ferry/common/fs.hpp"
#include "ferry/common/hash.hpp"
#include "job_store.hpp"
#include "mpi_job.hpp"
#include "options.hpp"
#include "restart_outcome.hpp"

extern char** environ;

namespace ferry::cli {
namespace {

using Clock = std::chrono::steady_clock;

volatile pid_t g_mpirun = -1;
void forward_to_mpirun(int sig) {
  if (g_mpirun > 0) ::kill(g_mpirun, sig);
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_array(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + json_string(v[i]);
  return out + "]";
}

// mpi.json is written by this file only: {"program": [...], "mpirun_options": [...]}, one array
// per line; parsed back by the same minimal reader.
std::vector<std::string> parse_json_array(const std::string& text, const std::string& key) {
  std::vector<std::string> out;
  auto at = text.find("\"" + key + "\"");
  if (at == std::string::npos) return out;
  at = text.find('[', at);
  if (at == std::string::npos) return out;
  for (size_t i = at + 1; i < text.size() && text[i] != ']'; ++i) {
    if (text[i] != '"') continue;
    std::string s;
    for (++i; i < text.size() && text[i] != '"'; ++i) {
      if (text[i] == '\\' && i + 1 < text.size()) {
        ++i;
        if (text[i] == 'u' && i + 4 < text.size()) {
          s += static_cast<char>(std::stoi(text.substr(i + 1, 4), nullptr, 16));
          i += 4;
          continue;
        }
      }
      s += text[i];
    }
    out.push_back(s);
  }
  return out;
}

std::string self_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}

std::string self_path() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "ferry";
}

std::string find_proxy() {
  if (const char* p = std::getenv("FERRY_MPI_PROXY"); p && *p) return p;
  for (const std::string& c : {self_dir() + "/ferry-mpi-proxy", self_dir() + "/../mpi/ferry-mpi-proxy",
                               self_dir() + "/../lib/ferry/ferry-mpi-proxy"})
    if (::access(c.c_str(), X_OK) == 0) return c;
  return "";
}

std::string random_token() {
  std::random_device rd;
  char buf[33];
  for (int i = 0; i < 4; ++i) std::snprintf(buf + 8 * i, 9, "%08x", rd());
  return buf;
}

bool write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads one line from fd, waiting at most `timeout_ms` (<= 0: no bound); empty at the timeout
// or at EOF (then *eof is set, when given).
std::string read_line(int fd, std::string& pending, int timeout_ms, bool* eof = nullptr) {
  auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto nl = pending.find('\n');
    if (nl != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      return line;
    }
    int wait_ms = -1;
    if (timeout_ms > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) return {};
      wait_ms = static_cast<int>(left);
    }
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return {};
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (eof != nullptr) *eof = true;
      return {};
    }
    pending.append(buf, static_cast<size_t>(n));
  }
}

// How long the front end waits past a round's timeout for rank 0's answer.
constexpr long long kFrontMarginMs = 3000;

// The default bound of a checkpoint round: FERRY_MPI_CHECKPOINT_TIMEOUT_S, else 120 s.
long long default_timeout_ms() {
  const char* v = std::getenv("FERRY_MPI_CHECKPOINT_TIMEOUT_S");
  double s = v != nullptr && *v != '\0' ? std::strtod(v, nullptr) : 0;
  return s > 0 ? static_cast<long long>(s * 1000) : 120'000;
}

struct Front {
  store::JobStore& store;
  store::JobRecord job;
  int listen_fd = -1;   // TCP, for rank 0's proxy
  int control_fd = -1;  // the job's control socket
  int rank0_fd = -1;
  std::string rank0_pending;
  uint64_t rounds = 0;  // checkpoint rounds asked of rank 0 in this run
  std::string token;
  uint32_t ntasks = 0;
  pid_t mpirun = -1;
  bool stopped = false;
  uint64_t stopped_generation = 0;
  int mpirun_status = -1;
  std::string host;
  std::string run_dir;  // mpi_job.hpp: the proxies' rank-R.host and rank-R.event files

  bool mpirun_running() const {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(mpirun), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
  }

  // "rank 2 (node h1), rank 3 (node h2)" for a comma-separated list of ranks.
  std::string name_ranks(const std::string& list) {
    auto nodes = mpi_job::rank_nodes(run_dir, ntasks);
    std::string out;
    std::istringstream in(list);
    for (std::string r; std::getline(in, r, ',');) {
      unsigned long k = std::strtoul(r.c_str(), nullptr, 10);
      std::string node = k < nodes.size() && !nodes[k].empty() ? nodes[k] : host;
      out += (out.empty() ? "" : ", ") + std::string("rank ") + r + " (node " + node + ")";
    }
    return out;
  }

  // Removes the partial generation `dir`. The proxies' rank supervisors may be removing their
  // rank directories inside it at the same moment ("abort DIR" of a given-up round), and one
  // remove_all that meets a file the other removed first stops there: retry until it is gone.
  void abandon(uint64_t gen, const std::string& dir) {
    for (int i = 0; i < 50; ++i) {
      store.abandon_generation(job.id, gen);
      if (::access(dir.c_str(), F_OK) != 0) return;
      ::usleep(100 * 1000);
    }
  }

  std::string kept_generation() {
    auto gens = store.generations(job.id);
    return gens && !gens->empty() ? "generation " + std::to_string(gens->back()) + " stays the newest"
                                  : "the job has no committed generation";
  }

  // One checkpoint (see the top of this file), bounded by `timeout_ms`. Returns the control
  // reply line.
  std::string checkpoint(bool stop, long long timeout_ms) {
    auto t0 = Clock::now();
    // Right after the launch the ranks may still be in MPI_Init: wait (bounded) for rank 0.
    for (int i = 0; i < 300 && rank0_fd < 0 && mpirun_running(); ++i) {
      pollfd p{listen_fd, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) accept_rank0();
    }
    if (rank0_fd < 0) return "error " + std::to_string(kExitUnsupported) + " rank 0 of job " + job.id + " is not connected (yet)";
    auto begun = store.begin_generation(job.id);
    if (!begun) return "error " + std::to_string(exit_status_for(begun.error())) + " " + begun.error().message();
    auto [gen, dir] = *begun;
    std::string round = std::to_string(++rounds);
    // Rank 0 gives the round up at timeout_ms and says so; this bound is for a rank 0 that
    // does not answer at all (stopped, or its host hangs).
    auto deadline = t0 + std::chrono::milliseconds(timeout_ms + kFrontMarginMs);
    write_all(rank0_fd, "checkpoint " + std::to_string(gen) + " " + dir + " " + std::to_string(timeout_ms) + " " +
                            round + "\n");
    auto abandoned = [&](const std::string& why) {
      abandon(gen, dir);
      return "error " + std::to_string(kExitUnsupported) + " checkpoint of job " + job.id + " abandoned, generation " +
             std::to_string(gen) + " not committed: " + why + "; " + kept_generation() + "; the job continues";
    };
    std::string line = read_round_line(round, deadline);
    unsigned long long failed = 1, image = 0, memory = 0;
    if (line.rfind("dumped ", 0) != 0 ||
        std::sscanf(line.c_str(), "dumped %*s %llu %llu %llu", &failed, &image, &memory) != 3) {
      if (line.empty() && rank0_fd < 0) {
        abandon(gen, dir);
        return "error " + std::to_string(kExitInternal) + " checkpoint of job " + job.id + " abandoned, generation " +
               std::to_string(gen) + " not committed: rank 0's proxy went away during the checkpoint (a rank or " +
               "its node was lost and mpirun ended the job); " + kept_generation();
      }
      if (line.empty()) {
        write_all(rank0_fd, "cancel " + round + "\n");
        return abandoned("no answer from the proxy of " + name_ranks("0") + " within " + seconds(timeout_ms) +
                         " (it is stopped or its node hangs)");
      }
      if (line.rfind("timeout ", 0) == 0) {
        char phase[32] = {}, ranks[4096] = {};
        long long ms = 0;
        std::sscanf(line.c_str(), "timeout %*s %31s %lld %4095s", phase, &ms, ranks);
        std::string what = std::string(phase) == "agreement" ? "the collective agreement"
                           : std::string(phase) == "drain"   ? "the drain"
                           : std::string(phase) == "dump"    ? "the freeze and dump"
                                                             : std::string("the ") + phase;
        std::string who = std::string(ranks) == "-" || ranks[0] == '\0' ? std::string("cancelled")
                                                                        : name_ranks(ranks) + " did not answer";
        return abandoned(what + " did not complete within " + seconds(ms) + ": " + who);
      }
      abandon(gen, dir);
      std::string why = line.rfind("failed ", 0) == 0 ? line.substr(line.find(' ', 7) + 1) : line;
      return "error " + std::to_string(kExitUnsupported) + " " + why;
    }
    std::string commit_error;
    if (failed == 0) {
      auto r = write_job_manifest(gen, dir, image, t0);
      if (!r) commit_error = r.error().message();
      // The last moment the proxies may still be waiting for the decision (checkpoint.cpp: the
      // others leave an undecided round kLateMarginMs after rank 0's deadline).
      if (commit_error.empty() && Clock::now() > deadline)
        commit_error = "the round ran past its deadline of " + seconds(timeout_ms) + " before the commit";
      if (commit_error.empty()) {
        auto c = store.commit_generation(job.id, gen);
        if (!c) commit_error = c.error().message();
      }
    } else {
      // "dumped ROUND FAILED IMAGE MEMORY [rank K: why]"
      std::string first;
      std::istringstream words(line);
      for (int i = 0; i < 5 && words; ++i) {
        std::string w;
        words >> w;
      }
      std::getline(words >> std::ws, first);
      commit_error = std::to_string(failed) + " rank(s) could not be checkpointed" +
                     (first.empty() ? std::string(" (see the job's stderr)") : " (" + first + ")");
    }
    const char* decision = !commit_error.empty() ? "abort" : stop ? "stop" : "resume";
    write_all(rank0_fd, std::string(decision) + " " + round + "\n");
    std::string done = read_round_line(round, Clock::now() + std::chrono::milliseconds(kFrontMarginMs + 30'000));
    if (!commit_error.empty()) {
      abandon(gen, dir);
      return "error " + std::to_string(kExitIo) + " checkpoint job " + job.id + " generation " + std::to_string(gen) +
             ": " + commit_error;
    }
    if (stop) {
      stopped = true;
      stopped_generation = gen;
    }
    double total = std::chrono::duration<double>(Clock::now() - t0).count();
    char tail[64];
    std::snprintf(tail, sizeof tail, " %.3f %.3f", total, total);
    // Then the ranks and their nodes ("ranks N nodes h1,h1,h2,h2"), printed by ferry checkpoint.
    auto nodes = mpi_job::rank_nodes(run_dir, ntasks);
    std::string list;
    for (const auto& n : nodes) list += (list.empty() ? "" : ",") + (n.empty() ? host : n);
    return "ok " + std::to_string(gen) + " " + store.generation_dir(job.id, gen) + " " + std::to_string(memory) + " " +
           std::to_string(image) + tail + " ranks " + std::to_string(ntasks) + " nodes " + list;
  }

  static std::string seconds(long long ms) {
    char buf[32];
    if (ms % 1000 == 0) std::snprintf(buf, sizeof buf, "%lld s", ms / 1000);
    else std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
    return buf;
  }

  // The next line from rank 0 about round `round` ("KIND ROUND ..."), lines of earlier rounds
  // (a rank 0 that answers after the front end gave its round up) dropped. Empty at the
  // deadline, or when rank 0's connection ends (then rank0_fd is closed and -1).
  std::string read_round_line(const std::string& round, Clock::time_point deadline) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return {};
      bool eof = false;
      std::string line = read_line(rank0_fd, rank0_pending, static_cast<int>(std::min<long long>(left, 1000)), &eof);
      if (eof) {
        ::close(rank0_fd);
        rank0_fd = -1;
        return {};
      }
      if (line.empty()) continue;
      std::istringstream words(line);
      std::string kind, id;
      words >> kind >> id;
      if (id == round) return line;
    }
  }

  Result<void> write_job_manifest(uint64_t gen, const std::string& dir, uint64_t bytes, Clock::time_point t0) {
    std::string m = "{\n  \"format\": \"ferry-manifest\",\n  \"version\": 1,\n  \"kind\": \"job\",\n  \"job\": " +
                    json_string(job.id) + ",\n  \"generation\": " + std::to_string(gen) + ",\n  \"ntasks\": " +
                    std::to_string(ntasks) + ",\n  \"transport\": \"mpi-proxy\",\n  \"created_ns\": " +
                    std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::system_clock::now().time_since_epoch()).count()) +
                    ",\n  \"duration_ns\": " +
                    std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()) +
                    ",\n  \"bytes\": " + std::to_string(bytes) + ",\n  \"ranks\": [";
    auto nodes = mpi_job::rank_nodes(run_dir, ntasks);
    for (uint32_t r = 0; r < ntasks; ++r) {
      const std::string& node = nodes[r].empty() ? host : nodes[r];
      std::string rank_dir = dir + "/rank-" + std::to_string(r);
      auto digest = hash::file_xxh3_128(rank_dir + "/MANIFEST.json");
      if (!digest) return fail(digest.error().wrap("rank " + std::to_string(r) + " manifest"));
      m += std::string(r ? "," : "") + "\n    {\"rank\": " + std::to_string(r) + ", \"node\": " + json_string(node) +
           ", \"dir\": \"rank-" + std::to_string(r) + "\", \"manifest_xxh3\": " + json_string(*digest) + "}";
    }
    m += "\n  ]\n}\n";
    FERRY_TRY_VOID(fs::write_file_atomic(dir + "/MANIFEST.json", m, 0644));
    return fs::fsync_path(dir);
  }

  void serve_control() {
    int c = ::accept4(control_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    struct ucred cred {};
    socklen_t len = sizeof cred;
    std::string pending;
    if (::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || (cred.uid != 0 && cred.uid != ::getuid())) {
      write_all(c, "error " + std::to_string(kExitPermission) + " job " + job.id + " belongs to another user\n");
    } else {
      std::string line = read_line(c, pending, 5000);
      // "checkpoint [stop] [timeout=MS]"
      std::istringstream words(line);
      std::string verb, w;
      words >> verb;
      bool stop = false, bad = verb != "checkpoint";
      long long timeout_ms = default_timeout_ms();
      while (words >> w) {
        if (w == "stop") stop = true;
        else if (w.rfind("timeout=", 0) == 0 && std::atoll(w.c_str() + 8) > 0) timeout_ms = std::atoll(w.c_str() + 8);
        else bad = true;
      }
      if (!bad) {
        write_all(c, stopped ? "error " + std::to_string(kExitNotFound) + " job " + job.id + " is stopping\n"
                             : checkpoint(stop, timeout_ms) + "\n");
      } else {
        write_all(c, "error " + std::to_string(kExitUsage) + " ferry mpirun serves 'checkpoint [stop] [timeout=MS]' only\n");
      }
    }
    ::close(c);
  }

  void accept_rank0() {
    int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    std::string pending;
    std::string hello = read_line(c, pending, 10'000);
    char tok[128] = {};
    unsigned n = 0;
    if (std::sscanf(hello.c_str(), "hello %127s %u", tok, &n) != 2 || tok != token || rank0_fd >= 0) {
      ::close(c);
      return;
    }
    int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rank0_fd = c;
    rank0_pending = pending;
    if (ntasks != 0 && n != ntasks)
      std::cerr << "ferry: the restarted job has " << n << " ranks, its checkpoint " << ntasks << "\n";
    ntasks = n;
  }

  // Serves until mpirun exits; returns its status.
  int run() {
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(mpirun, &status, WNOHANG);
      if (r == mpirun) {
        mpirun_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (stopped) return kExitStopped;
        return mpirun_status;
      }
      pollfd p[3] = {{listen_fd, POLLIN, 0}, {control_fd, POLLIN, 0}, {rank0_fd, POLLIN, 0}};
      int n = ::poll(p, rank0_fd >= 0 ? 3 : 2, 100);
      if (n <= 0) continue;
      if (p[0].revents & POLLIN) accept_rank0();
      if (p[1].revents & POLLIN) serve_control();
      if (rank0_fd >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
        char buf[256];
        ssize_t k = ::read(rank0_fd, buf, sizeof buf);
        if (k <= 0) {
          ::close(rank0_fd);
          rank0_fd = -1;
        }
      }
    }
  }
};

Result<int> listen_tcp(std::string& address) {
  const char* host = std::getenv("FERRY_MPI_FRONT_HOST");
  std::string h = host && *host ? host : "127.0.0.1";
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = h == "127.0.0.1" ? htonl(INADDR_LOOPBACK) : htonl(INADDR_ANY);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0) {
    ::close(fd);
    return fail_errno("listen for rank 0's proxy");
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  address = h + ":" + std::to_string(ntohs(a.sin_port));
  return fd;
}

Result<int> listen_control(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) return fail(errc::protocol, "control socket path " + path + " is too long");
  ::unlink(path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno("socket");
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 8) != 0) {
    ::close(fd);
    return fail_errno("listen on " + path);
  }
  ::chmod(path.c_str(), 0600);
  return fd;
}

// Copies what is appended to `path` to `out` until *done (then once more), every 100 ms.
void follow(const std::string& path, std::FILE* out, const std::atomic<bool>* done) {
  long long at = 0;
  for (bool last = false; !last;) {
    last = done->load();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[65536];
      ssize_t n;
      while ((n = ::pread(fd, buf, sizeof buf, at)) > 0) {
        std::fwrite(buf, 1, static_cast<size_t>(n), out);
        at += n;
      }
      std::fflush(out);
      ::close(fd);
    }
    if (!last) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int mpirun_through_coordinator(const std::string& address, const mpi_job::MpiRun& run, const std::vector<std::string>& nodes,
                               bool detach) {
  std::string proxy = find_proxy();
  if (proxy.empty()) {
    complain("mpirun: ferry-mpi-proxy not found beside ferry (set FERRY_MPI_PROXY)");
    return kExitUnsupported;
  }
  proto::LaunchMpiJob req;
  req.name = run.name.value_or("");
  req.program = run.program;
  req.mpirun_options = run.mpirun_opts;
  req.proxy = proxy;
  req.nodes = nodes;
  req.ntasks = 0;
  for (size_t i = 0; i + 1 < run.mpirun_opts.size(); ++i)
    if (run.mpirun_opts[i] == "-np" || run.mpirun_opts[i] == "-n" || run.mpirun_opts[i] == "--np" ||
        run.mpirun_opts[i] == "-c")
      req.ntasks = static_cast<std::uint32_t>(std::strtoul(run.mpirun_opts[i + 1].c_str(), nullptr, 10));
  if (req.ntasks == 0) {
    complain("mpirun: through a coordinator, give the number of ranks with -np N");
    return kExitUsage;
  }
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd)) req.cwd = cwd;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    if (kv.rfind("FERRY_MPI_", 0) != 0 && kv.rfind("FERRY_CLI_PATH=", 0) != 0) req.env.emplace_back(kv);
  }
  req.env.push_back("FERRY_CLI_PATH=" + self_path());
  auto client = CoordinatorClient::connect(address);
  if (!client) return unreachable(address, client.error());
  auto r = client->call<proto::LaunchMpiJob, proto::LaunchJobReply>(req);
  if (!r) return unreachable(address, r.error());
  if (r->code != proto::kWireOk) {
    complain("mpirun: " + r->message);
    return exit_for_reply(r->code, r->message);
  }
  if (detach) {
    std::cout << r->job << std::endl;
    return 0;
  }
  auto st = client->call<proto::Status, proto::StatusReply>(proto::Status{r->job});
  if (!st) return unreachable(address, st.error());
  if (st->code != proto::kWireOk || st->jobs.empty() || st->jobs.front().restarts.empty()) {
    complain("mpirun: job " + r->job + " has no launch record (" + st->message + ")");
    return kExitInternal;
  }
  std::uint64_t record = st->jobs.front().restarts.front().restart_id;
  std::string dir = store::default_root(run.store) + "/jobs/" + r->job;
  std::cerr << "ferry: job " << r->job << " launched through the coordinator at " << address << ": " << req.ntasks
            << " ranks (record " << record << "); mpirun's output: " << dir << "/mpirun.out\n";
  std::atomic<bool> done{false};
  std::thread out(follow, dir + "/mpirun.out", stdout, &done), err(follow, dir + "/mpirun.err", stderr, &done);
  int status = wait_for_record(*client, record, run.json, 0);
  done = true;
  out.join();
  err.join();
  return status;
}

}  // namespace

int cmd_mpirun(const Args& args) {
  auto [before, program] = split_at_dashdash(args);
  mpi_job::MpiRun run;
  run.program = program;
  std::optional<std::string> coordinator, nodes;
  bool detach = false;
  for (size_t i = 0; i < before.size(); ++i) {
    const std::string& a = before[i];
    auto value = [&](std::optional<std::string>& into) {
      if (i + 1 >= before.size()) return false;
      into = before[++i];
      return true;
    };
    if (a == "-h" || a == "--help") {
      std::cout << "usage: ferry mpirun [--store DIR] [--name NAME] [mpirun options] -- PROGRAM [ARGS...]\n"
                   "       ferry mpirun [--coordinator HOST:PORT] [--nodes n1,n2|n1:1,n2:3] [--detach] [--json] --name NAME\n"
                   "                    -np N [mpirun options] -- PROGRAM   (through a coordinator; default $FERRY_COORDINATOR)\n"
                   "       ferry mpirun [--store DIR] --restart JOB [--generation N] [mpirun options]\n";
      return 0;
    }
    bool ok = true;
    if (a == "--store") ok = value(run.store);
    else if (a == "--name") ok = value(run.name);
    else if (a == "--restart") ok = value(run.restart);
    else if (a == "--coordinator") ok = value(coordinator);
    else if (a == "--nodes") ok = value(nodes);
    else if (a == "--detach") detach = true;
    else if (a == "--json") run.json = true;
    else if (a == "--generation") {
      std::optional<std::string> g;
      ok = value(g);
      if (ok) run.generation = std::stoull(*g);
    } else run.mpirun_opts.push_back(a);
    if (!ok) {
      complain("mpirun: " + a + " needs a value");
      return kExitUsage;
    }
  }
  if (!run.restart) {
    auto address = coordinator_for(coordinator, store::default_root(run.store), "");
    if (address) {
      if (run.program.empty()) {
        complain("mpirun: no program given (ferry mpirun [mpirun options] -- PROGRAM [ARGS...])");
        return kExitUsage;
      }
      return mpirun_through_coordinator(*address, run, nodes ? split_nodes(*nodes) : std::vector<std::string>{}, detach);
    }
  }
  if (nodes || detach || coordinator) {
    complain("mpirun: --nodes, --detach and --coordinator need a coordinator (set FERRY_COORDINATOR)");
    return kExitUsage;
  }
  return mpi_job::run_mpi_job(std::move(run));
}

int mpi_job::run_mpi_job(MpiRun run) {
  auto& store_opt = run.store;
  auto& name = run.name;
  auto& restart = run.restart;
  auto& generation = run.generation;
  auto& mpirun_opts = run.mpirun_opts;
  auto& program = run.program;
  if (!restart && program.empty()) {
    complain("mpirun: no program given (ferry mpirun [mpirun options] -- PROGRAM [ARGS...])");
    return kExitUsage;
  }
  std::string proxy = find_proxy();
  if (proxy.empty()) {
    complain("mpirun: ferry-mpi-proxy not found beside ferry (set FERRY_MPI_PROXY)");
    return kExitUnsupported;
  }
  auto store = store::JobStore::open(store::default_root(store_opt));
  if (!store) {
    complain("mpirun: " + store.error().message());
    return exit_status_for(store.error());
  }
  store::JobRecord job;
  std::string restore_dir;
  uint32_t ntasks = 0;
  if (restart) {
    auto found = store->find(*restart);
    if (!found) {
      complain("mpirun --restart: " + found.error().message());
      return exit_status_for(found.error());
    }
    job = *found;
    if (job.state == "running" && store::supervisor_alive(job)) {
      complain("mpirun --restart: job " + job.id + " is running");
      return kExitBusy;
    }
    auto saved = fs::read_file(store->job_dir(job.id) + "/mpi.json");
    if (!saved) {
      complain("mpirun --restart: job " + job.id + " was not started by 'ferry mpirun' (no mpi.json)");
      return kExitNotFound;
    }
    program = parse_json_array(*saved, "program");
    if (mpirun_opts.empty() || run.placement.any()) mpirun_opts = parse_json_array(*saved, "mpirun_options");
    auto gens = store->generations(job.id);
    if (!gens || gens->empty()) {
      complain("mpirun --restart: job " + job.id + " has no committed generation");
      return kExitNotFound;
    }
    uint64_t gen = generation.value_or(gens->back());
    restore_dir = store->generation_dir(job.id, gen);
    auto manifest = fs::read_file(restore_dir + "/MANIFEST.json");
    if (!manifest || manifest->find("\"kind\": \"job\"") == std::string::npos) {
      complain("mpirun --restart: generation " + std::to_string(gen) + " of job " + job.id + " has no job manifest");
      return kExitNotFound;
    }
    auto at = manifest->find("\"ntasks\": ");
    ntasks = at == std::string::npos ? 0 : static_cast<uint32_t>(std::stoul(manifest->substr(at + 10)));
    if (run.placement.any()) {
      auto placed = apply_placement(mpirun_opts, run.placement, ntasks);
      if (!placed) {
        complain("restart: " + placed.error().message());
        return kExitUsage;
      }
      mpirun_opts = *placed;
    }
    store->remove_partials(job.id);
    job.restored_from = gen;
    // The world size is the checkpoint's: replace any -np/-n.
    Args filtered;
    for (size_t i = 0; i < mpirun_opts.size(); ++i) {
      if ((mpirun_opts[i] == "-np" || mpirun_opts[i] == "-n" || mpirun_opts[i] == "--np") && i + 1 < mpirun_opts.size()) {
        ++i;
        continue;
      }
      filtered.push_back(mpirun_opts[i]);
    }
    mpirun_opts = filtered;
    mpirun_opts.insert(mpirun_opts.begin(), {"-np", std::to_string(ntasks)});
  } else {
    auto created = store->create_job(name.value_or(""), program);
    if (!created) {
      complain("mpirun: " + created.error().message());
      return exit_status_for(created.error());
    }
    job = *created;
    std::string saved = "{\n  \"program\": " + json_array(program) + ",\n  \"mpirun_options\": " +
                        json_array(mpirun_opts) + "\n}\n";
    if (auto w = fs::write_file_atomic(store->job_dir(job.id) + "/mpi.json", saved, 0600); !w) {
      complain("mpirun: " + w.error().message());
      return exit_status_for(w.error());
    }
  }

  auto begun_run = begin_run(*store, job.id);
  if (!begun_run) {
    complain("mpirun: " + begun_run.error().message());
    return exit_status_for(begun_run.error());
  }
  auto [run_number, run_path] = *begun_run;
  Front front{*store, job};
  front.ntasks = ntasks;
  front.run_dir = run_path;
  struct utsname u {};
  if (::uname(&u) == 0) front.host = u.nodename;
  std::string address;
  auto lfd = listen_tcp(address);
  if (!lfd) {
    complain("mpirun: " + lfd.error().message());
    return exit_status_for(lfd.error());
  }
  front.listen_fd = *lfd;
  auto cfd = listen_control(store->control_socket(job.id));
  if (!cfd) {
    complain("mpirun: " + cfd.error().message());
    return exit_status_for(cfd.error());
  }
  front.control_fd = *cfd;
  front.token = random_token();

  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    if (kv.rfind("FERRY_MPI_", 0) != 0 && kv.rfind("FERRY_CLI_PATH=", 0) != 0) env.emplace_back(kv);
  }
  env.push_back("FERRY_MPI_STORE=" + store->root());
  env.push_back("FERRY_MPI_JOB=" + job.id);
  env.push_back("FERRY_CLI_PATH=" + self_path());
  env.push_back("FERRY_MPI_FRONT=" + address);
  env.push_back("FERRY_MPI_TOKEN=" + front.token);
  env.push_back("FERRY_MPI_RUN_DIR=" + run_path);
  const char* mpirun_env = std::getenv("MPIRUN");
  std::vector<std::string> cmd = {mpirun_env && *mpirun_env ? mpirun_env : "mpirun"};
  cmd.insert(cmd.end(), mpirun_opts.begin(), mpirun_opts.end());
  for (const char* v : {"FERRY_MPI_STORE", "FERRY_MPI_JOB", "FERRY_CLI_PATH", "FERRY_MPI_FRONT", "FERRY_MPI_TOKEN",
                        "FERRY_MPI_RUN_DIR"}) {
    cmd.push_back("-x");
    cmd.push_back(v);
  }
  cmd.push_back(proxy);
  if (!restore_dir.empty()) {
    cmd.push_back("--restore");
    cmd.push_back(restore_dir);
  }
  cmd.push_back("--");
  cmd.insert(cmd.end(), program.begin(), program.end());

  std::vector<char*> cargv, cenv;
  for (auto& s : cmd) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  for (auto& s : env) cenv.push_back(s.data());
  cenv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    complain("mpirun: fork: " + std::string(std::strerror(errno)));
    return kExitInternal;
  }
  if (pid == 0) {
    ::execvpe(cargv[0], cargv.data(), cenv.data());
    std::fprintf(stderr, "ferry: cannot run %s: %s\n", cargv[0], std::strerror(errno));
    ::_exit(127);
  }
  front.mpirun = pid;
  std::cerr << "ferry: job " << job.id << (restart ? " restarted" : " launched") << " (mpirun pid " << pid << ", run "
            << run_number << ")\n";
  job.pid = pid;
  job.supervisor_pid = ::getpid();
  job.state = "running";
  front.job = job;
  if (auto r = store->save(job); !r) complain(r.error().message());
  // Termination signals go to mpirun, which ends the ranks.
  g_mpirun = pid;
  for (int s : {SIGINT, SIGTERM, SIGHUP}) ::signal(s, forward_to_mpirun);
  int status = front.run();
  int mpirun_status = front.mpirun_status;
  auto record = fold_run(run_path, run_number, job.id, mpirun_status,
                         front.stopped ? std::optional<uint64_t>(front.stopped_generation) : std::nullopt);
  if (auto w = write_record(run_path, record); !w) complain(w.error().message());
  ::close(front.control_fd);
  ::unlink(store->control_socket(job.id).c_str());
  job.state = front.stopped ? "stopped" : "exited";
  job.exit_status = status;
  job.supervisor_pid = 0;
  if (auto r = store->save(job); !r) complain(r.error().message());
  if (front.stopped)
    std::cerr << "ferry: job " << job.id << " stopped after checkpoint generation " << front.stopped_generation
              << "; resume it with 'ferry restart " << (job.name.empty() ? job.id : job.name) << "'\n";
  if (run.json) std::cout << coord::wait_json(record) << std::endl;
  std::string line = coord::wait_stderr_line(record, false);
  if (!line.empty()) std::cerr << line << "\n";
  return run.wait_status ? coord::wait_exit_status(record, false) : status;
}

}  // namespace ferry::cli
