// SPDX-License-Identifier: Apache-2.0
// The embedded coordinator's agent child and idle exit (see local_mode.hpp).
#include "local_mode.hpp"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.hpp"

namespace ferry::coord {

pid_t spawn_child(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(0);  // the parent died before prctl
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  return pid;
}

IdleExit::IdleExit(boost::asio::io_context& io, std::chrono::seconds idle_after, std::string lock_path,
                   std::string address_file, std::function<bool()> busy, std::function<void()> on_exit)
    : timer_(io),
      idle_after_(idle_after),
      lock_path_(std::move(lock_path)),
      address_file_(std::move(address_file)),
      busy_(std::move(busy)),
      on_exit_(std::move(on_exit)),
      idle_since_(std::chrono::steady_clock::now()) {}

void IdleExit::start() {
  // Check a few times per idle period (at most every second, at least every 5 s).
  auto period = std::chrono::milliseconds(std::clamp<long>(idle_after_.count() * 1000 / 4, 200, 5000));
  timer_.expires_after(period);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    check();
  });
}

void IdleExit::check() {
  auto now = std::chrono::steady_clock::now();
  bool clients = true;
  int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 && errno == ENOENT && !busy_()) {
    // The ferry home holding the lock was removed: no command can find these daemons any
    // more (their address file went with it), so nothing would ever take the lock again.
    log(Severity::warning, "coord.main", {}, "the folder of " + lock_path_ + " was removed: exiting");
    return on_exit_();
  }
  if (fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0) clients = false;
  if (busy_() || clients) {
    idle_since_ = now;
    if (fd >= 0) ::close(fd);  // releases the lock if we got it
    return start();
  }
  if (now - idle_since_ < idle_after_) {
    ::close(fd);
    return start();
  }
  // Idle long enough: keep the lock until the process ends (a CLI waits for it, then
  // finds no address file and starts a new coordinator).
  held_lock_ = fd;
  ::unlink(address_file_.c_str());
  log(Severity::info, "coord.main", {}, "idle for " + std::to_string(idle_after_.count()) + " s: exiting");
  on_exit_();
}

}  // namespace ferry::coord
