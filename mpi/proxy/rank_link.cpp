// SPDX-License-Identifier: Apache-2.0
// RankSupervisor and FrontLink (rank_link.hpp). The supervisor's control socket lives under
// $TMPDIR (or /tmp), named after this proxy's pid: it only has to be reachable on this host.
#include "rank_link.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace ferry::mpi::proxy {
namespace {

std::string read_status_line(int fd) {
  std::string line;
  char c;
  while (line.size() < 4096) {
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    line += c;
  }
  return line;
}

bool write_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

bool RankSupervisor::start(const std::string& ferry, const std::string& store, const std::string& job, int rank,
                           const std::vector<std::string>& argv, const std::string& restore_dir,
                           const std::vector<std::string>& env, std::string* why) {
  const char* tmp = std::getenv("TMPDIR");
  socket_ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/ferry-mpi-" + std::to_string(getpid()) + ".sock";
  int status[2];
  if (pipe2(status, O_CLOEXEC) != 0) {
    *why = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  std::vector<std::string> args = {ferry, restore_dir.empty() ? "rank-launch" : "rank-restore",
                                   "--store", store, "--job", job, "--rank", std::to_string(rank),
                                   "--control", socket_, "--status-fd", std::to_string(status[1])};
  if (restore_dir.empty()) {
    args.push_back("--");
    args.insert(args.end(), argv.begin(), argv.end());
  } else {
    args.push_back("--dir");
    args.push_back(restore_dir);
  }
  std::vector<char*> cargv, cenv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<std::string> env_copy = env;
  for (auto& e : env_copy) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    *why = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    close(status[0]);
    // Only stdio and the status pipe: none of Open MPI's descriptors (not close-on-exec).
    int keep = status[1];
    if (keep > 3) close_range(3, static_cast<unsigned>(keep) - 1, 0);
    close_range(static_cast<unsigned>(keep) + 1, ~0U, 0);
    fcntl(keep, F_SETFD, 0);
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  child_ = pid;
  close(status[1]);
  std::string line = read_status_line(status[0]);
  if (!restore_dir.empty() && line.rfind("validate ok", 0) == 0) line = read_status_line(status[0]);
  close(status[0]);
  const char* want = restore_dir.empty() ? "launch ok " : "restore ok ";
  if (line.rfind(want, 0) != 0) {
    *why = line.empty() ? "the rank supervisor " + ferry + " ended before starting the program" : line;
    return false;
  }
  app_ = static_cast<pid_t>(std::strtol(line.c_str() + std::strlen(want), nullptr, 10));
  return true;
}

std::string RankSupervisor::control(const std::string& line, long timeout_ms) const {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("error 0 socket: ") + std::strerror(errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_.c_str(), sizeof addr.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string e = std::string("error 0 connect to the rank supervisor ") + socket_ + ": " + std::strerror(errno);
    close(fd);
    return e;
  }
  write_all(fd, line + "\n");
  if (timeout_ms >= 0) {
    pollfd p{fd, POLLIN, 0};
    int r;
    do r = poll(&p, 1, static_cast<int>(timeout_ms));
    while (r < 0 && errno == EINTR);
    if (r == 0) {
      close(fd);
      char why[160];
      std::snprintf(why, sizeof why, "error 0 the rank supervisor did not answer '%s' within %.1f s",
                    line.substr(0, line.find(' ')).c_str(), static_cast<double>(timeout_ms) / 1000.0);
      return why;
    }
  }
  std::string reply = read_status_line(fd);
  close(fd);
  return reply.empty() ? "error 0 the rank supervisor closed the connection" : reply;
}

bool FrontLink::connect_from_env(int world_size, std::string* why) {
  const char* front = std::getenv("FERRY_MPI_FRONT");
  const char* token = std::getenv("FERRY_MPI_TOKEN");
  if (front == nullptr || token == nullptr) {
    *why = "FERRY_MPI_FRONT/FERRY_MPI_TOKEN not set";
    return false;
  }
  std::string spec = front;
  auto colon = spec.rfind(':');
  if (colon == std::string::npos) {
    *why = "FERRY_MPI_FRONT is not HOST:PORT";
    return false;
  }
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(spec.substr(0, colon).c_str(), spec.substr(colon + 1).c_str(), &hints, &res) != 0 || res == nullptr) {
    *why = "cannot resolve " + spec;
    return false;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    *why = "connect to ferry mpirun at " + spec + ": " + std::strerror(errno);
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return false;
  }
  freeaddrinfo(res);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fd_ = fd;
  send_line(std::string("hello ") + token + " " + std::to_string(world_size));
  return true;
}

void FrontLink::pull() {
  while (fd_ >= 0) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) break;
    char buf[512];
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd_);
      fd_ = -1;
      break;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
  }
  for (auto nl = pending_.find('\n'); nl != std::string::npos; nl = pending_.find('\n')) {
    lines_.push_back(pending_.substr(0, nl));
    pending_.erase(0, nl + 1);
  }
}

std::string FrontLink::poll_line() {
  pull();
  if (lines_.empty()) return {};
  std::string line = std::move(lines_.front());
  lines_.pop_front();
  return line;
}

std::string FrontLink::take_line(const std::function<bool(const std::string&)>& match) {
  pull();
  for (auto it = lines_.begin(); it != lines_.end(); ++it) {
    if (!match(*it)) continue;
    std::string line = std::move(*it);
    lines_.erase(it);
    return line;
  }
  return {};
}

void FrontLink::send_line(const std::string& line) {
  if (fd_ >= 0) write_all(fd_, line + "\n");
}

}  // namespace ferry::mpi::proxy
