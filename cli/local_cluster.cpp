// SPDX-License-Identifier: Apache-2.0
// Finding or starting the embedded coordinator and agent (see local_cluster.hpp).
//
// Algorithm:
//  1. Take HOME/local/lock shared (kept until this process ends: the coordinator cannot
//     exit idle while we run). If coordinator.addr names a coordinator that accepts a
//     connection, use it.
//  2. Otherwise take the lock exclusively (a coordinator exiting idle holds it until it is
//     gone), look again (another CLI may have started one), and start ferry-coordinator
//     detached (double fork, own session) with --spawn-agent local, --idle-exit-s and the
//     lock; read its "listening HOST:PORT" line; go back to the shared lock.
//  3. Wait (bounded) until node "local" is registered, so a launch finds its agent.
#include "local_cluster.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "coordinator_client.hpp"
#include "ferry/common/fs.hpp"
#include "ferry/proto/auth.hpp"
#include "job_store.hpp"

namespace ferry::cli {
namespace {

std::string& home_slot() {
  static std::string home;
  return home;
}

std::string self_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  return fs::dirname(buf);
}

// NAME beside `ferry`, else in the build tree (../DIR/NAME), else on PATH.
std::string find_binary(const char* name, const char* build_dir) {
  std::string dir = self_dir();
  for (std::string p : {dir + "/" + name, dir + "/../" + build_dir + "/" + name})
    if (::access(p.c_str(), X_OK) == 0) return p;
  if (const char* path = std::getenv("PATH")) {
    std::string all = path;
    std::size_t start = 0;
    while (start <= all.size()) {
      auto colon = all.find(':', start);
      std::string p = all.substr(start, colon == std::string::npos ? std::string::npos : colon - start) + "/" + name;
      if (::access(p.c_str(), X_OK) == 0) return p;
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  return name;
}

Result<void> ensure_secret(const std::string& path) {
  if (::access(path.c_str(), F_OK) == 0) return {};
  unsigned char raw[32];
  UniqueFd rnd(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  if (!rnd || ::read(rnd.get(), raw, sizeof raw) != static_cast<ssize_t>(sizeof raw)) return fail_errno("read /dev/urandom");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : raw) hex += {kHex[c >> 4], kHex[c & 15]};
  hex += "\n";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return errno == EEXIST ? Result<void>{} : fail_errno("create " + path);
  if (::write(fd.get(), hex.data(), hex.size()) != static_cast<ssize_t>(hex.size())) return fail_errno("write " + path);
  return {};
}

bool accepts(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  return static_cast<bool>(CoordinatorClient::probe(address));
}

std::string read_address(const std::string& file) {
  auto text = fs::read_file(file);
  if (!text) return "";
  std::string a = *text;
  while (!a.empty() && (a.back() == '\n' || a.back() == ' ')) a.pop_back();
  return a;
}

// Starts the coordinator detached; returns the address from its "listening" line.
Result<std::string> start_daemons(const std::string& home, const std::string& dir) {
  FERRY_TRY_VOID(ensure_secret(dir + "/cluster.secret"));
  FERRY_TRY(user_secret, proto::load_or_create_user_secret());
  (void)user_secret;
  unsigned idle = kDefaultIdleExitS;
  if (const char* e = std::getenv("FERRY_IDLE_EXIT_S"); e && *e) idle = static_cast<unsigned>(std::strtoul(e, nullptr, 10));
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  self[n > 0 ? n : 0] = 0;
  std::vector<std::string> argv{find_binary("ferry-coordinator", "coordinator"),
                                "--listen", "127.0.0.1:0",
                                "--state", dir + "/state",
                                "--store", home,
                                "--cluster-secret", dir + "/cluster.secret",
                                "--user-secret", proto::user_secret_path(),
                                "--job-address", kLocalCoordinator,
                                "--address-file", dir + "/coordinator.addr",
                                "--spawn-agent", kLocalNode,
                                "--agent", find_binary("ferry-agent", "agent"),
                                "--ferry", self,
                                "--idle-exit-s", std::to_string(idle),
                                "--idle-lock", dir + "/lock"};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return fail_errno("pipe");
  std::string err_path = dir + "/coordinator.err";
  pid_t child = ::fork();
  if (child < 0) return fail_errno("fork");
  if (child == 0) {
    // Double fork: the coordinator is not our child and outlives us in its own session.
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    int null_fd = ::open("/dev/null", O_RDONLY);
    int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(null_fd, 0);
    ::dup2(out[1], 1);
    ::dup2(err_fd >= 0 ? err_fd : null_fd, 2);
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  UniqueFd rd(out[0]);
  ::waitpid(child, nullptr, 0);
  std::string line;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
    pollfd p{rd.get(), POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[256];
    ssize_t r = ::read(rd.get(), buf, sizeof buf);
    if (r <= 0) break;
    line.append(buf, static_cast<std::size_t>(r));
  }
  if (line.rfind("listening ", 0) != 0 || line.find('\n') == std::string::npos) {
    auto err = fs::read_file(err_path);
    return fail(Error(std::error_code(ECHILD, std::system_category()),
                      "start " + argv[0] + " failed" + (err && !err->empty() ? ": " + *err : " (see " + err_path + ")")));
  }
  return line.substr(10, line.find('\n') - 10);
}

bool agent_registered(const std::string& address) {
  auto client = CoordinatorClient::connect(address);
  if (!client) return false;
  auto st = client->call<proto::Status, proto::StatusReply>(proto::Status{""});
  if (!st || st->code != proto::kWireOk) return false;
  for (const auto& n : st->nodes)
    if (n.node == kLocalNode && n.alive) return true;
  return false;
}

}  // namespace

void set_local_home(const std::string& home) { home_slot() = home; }

const std::string& local_home() {
  if (home_slot().empty()) home_slot() = store::default_root(std::nullopt);
  return home_slot();
}

Result<std::string> local_coordinator() {
  static std::string cached;
  if (!cached.empty()) return cached;
  const std::string home = local_home();
  const std::string dir = home + "/local";
  FERRY_TRY_VOID(fs::make_dirs(dir, 0700));
  // Never closed: the shared lock lasts as long as this command.
  static int lock_fd = -1;
  if (lock_fd < 0) lock_fd = ::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return fail_errno("open " + dir + "/lock");
  if (::flock(lock_fd, LOCK_SH) != 0) return fail_errno("lock " + dir + "/lock");
  std::string address = read_address(dir + "/coordinator.addr");
  if (address.empty() || !accepts(address)) {
    if (::flock(lock_fd, LOCK_EX) != 0) return fail_errno("lock " + dir + "/lock");
    address = read_address(dir + "/coordinator.addr");
    if (address.empty() || !accepts(address)) {
      auto started = start_daemons(home, dir);
      if (!started) {
        ::flock(lock_fd, LOCK_SH);
        return fail(started.error());
      }
      address = *started;
    }
    if (::flock(lock_fd, LOCK_SH) != 0) return fail_errno("lock " + dir + "/lock");
  }
  for (int i = 0; i < 200 && !agent_registered(address); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  cached = address;
  return address;
}

}  // namespace ferry::cli
