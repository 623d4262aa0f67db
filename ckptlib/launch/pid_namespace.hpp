// SPDX-License-Identifier: Apache-2.0
// PidNamespace: a job's own PID namespace whose PID 1 is "ferry init", a tiny reaper that
// starts or receives the job's main process, forwards signals to it and exits with its
// status. `ferry launch` starts the program in one (it becomes PID 2); `ferry restart` makes a
// fresh one and has init create the restore child with the image's pid (clone3 set_tid), so
// getpid(), gettid() and getppid() (= 1) read the same before and after a restart.
// A caller without CAP_SYS_ADMIN (any non-root user) gets the namespace owned by a new user
// namespace that maps only its own uid and gid (user_namespace.hpp): init holds the
// capabilities set_tid needs there, the program runs with the user's ids and none.
// Ownership: the object owns init until release(); the destructor SIGKILLs init, which ends
// every process of the namespace, and reaps it.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ferry/common/result.hpp"
#include "restore/restore.hpp"

namespace ferry::launch {

// The program ferry init starts as the namespace's first process.
struct ExecSpec {
  std::vector<std::string> argv;  // argv[0] is searched in PATH (execvpe)
  std::vector<std::string> env;   // the complete environment, "NAME=value"
  std::vector<int> keep_fds;      // descriptors > 2 the program keeps; all others are closed
  sigset_t sigmask{};             // the program's signal mask
  int exec_error_fd = -1;         // close-on-exec pipe: a failed exec writes its errno here
};

struct NamespaceOptions {
  // Restart: the text for timens_offsets of the job's time namespace
  // (restore::timens_offsets_text). With a user namespace, init creates that time namespace
  // (it needs the user namespace's CAP_SYS_ADMIN/CAP_SYS_TIME) before it creates the restore
  // child, so the child and all it creates run in it; see time_namespace_error(). Ignored
  // without a user namespace: a privileged caller has made its own with
  // restore::prepare_time_namespace before create(). Empty: no time namespace.
  std::string time_offsets;
};

class PidNamespace final : public restore::Spawner {
public:
  // Creates the namespace with ferry init as PID 1, a child of the caller: directly with
  // CAP_SYS_ADMIN (root), else inside a new user namespace (see the file comment). With
  // `program`, init starts it at once and main_pid() is its host pid (-1 when it already
  // ended, e.g. exec failed, and init reaped it); without, init waits for spawn(). Init is
  // forked from the caller: it runs only raw system calls, so the caller may be
  // multi-threaded. errc::unsupported when no namespace can be had here (user namespaces
  // disabled, clone refused): the message says why, and nothing is left running; a caller
  // may then run the job without one (new ids at restart).
  static Result<std::unique_ptr<PidNamespace>> create(const ExecSpec* program, const NamespaceOptions& opts = {});

  ~PidNamespace() override;
  PidNamespace(const PidNamespace&) = delete;
  PidNamespace& operator=(const PidNamespace&) = delete;

  // Init's pid in the caller's namespace. Its exit status is the main process's: its exit
  // code, or 128+N when signal N killed it.
  pid_t init_pid() const noexcept { return init_pid_; }
  // The main process's pid in the caller's namespace (after create with a program or a
  // successful spawn), else -1. `kill -9` on it ends the job.
  pid_t main_pid() const noexcept { return main_pid_; }
  // The caller has taken over init (it waits for it): the destructor leaves it alone.
  void release() noexcept { released_ = true; }
  // The namespace is owned by a user namespace of ours (the caller was not privileged).
  bool in_user_namespace() const noexcept { return user_ns_; }
  // With opts.time_offsets and a user namespace: why init could not make the time namespace
  // (the job then sees the host's monotonic clocks), or "" when it did.
  const std::string& time_namespace_error() const noexcept { return time_error_; }

  // restore::Spawner: init creates the restore child with clone3(set_tid = {pid}) in the
  // namespace; it becomes the main process.
  pid_t layout_pid() const override { return init_pid_; }
  Result<pid_t> spawn(pid_t pid, uint64_t gadget, uint64_t page) override;
  // In a user namespace the restore child has init's capabilities there (set_tid needs
  // them); the program had none (it exec'd with a non-zero uid), so restore drops them.
  bool spawned_child_drops_capabilities() const override { return user_ns_ && ::geteuid() != 0; }

private:
  PidNamespace(pid_t init, int ctl, bool user_ns) : init_pid_(init), ctl_(ctl), user_ns_(user_ns) {}
  Result<pid_t> host_pid_of(pid_t ns_pid) const;
  pid_t init_pid_ = -1;
  pid_t main_pid_ = -1;
  int ctl_ = -1;
  bool user_ns_ = false;
  bool released_ = false;
  std::string time_error_;
};

}  // namespace ferry::launch
