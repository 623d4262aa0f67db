// SPDX-License-Identifier: Apache-2.0
// Restore of one checkpointed process from an image: validation (everything that can fail,
// before anything is created) and restore_process (fork, rebuild by ptrace, let it run).
// Rules of this folder: ckptlib/restore/README.md.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"

namespace ferry::restore {

// Where the restore child comes from when it must not simply be a fork of the caller, e.g.
// inside a fresh PID namespace with a given pid (launch::PidNamespace implements it). The
// child must run bootstrap_restore_child() and be traceable by the caller.
class LazyPages;  // lazy_pages.hpp

class Spawner {
public:
  virtual ~Spawner() = default;
  // A process whose address-space layout the spawned child will have (it is forked from
  // it); restore plans its gadget and regions against that layout.
  virtual pid_t layout_pid() const = 0;
  // Starts the child with id `pid` in its own PID namespace, running
  // bootstrap_restore_child(status_fd, gadget, page, parent) until it reported success, and
  // returns its id in the caller's namespace. Nothing is left behind on failure.
  virtual Result<pid_t> spawn(pid_t pid, uint64_t gadget, uint64_t page) = 0;
  // True when the spawned child holds capabilities the checkpointed program did not have
  // (those of a user namespace made so that set_tid is allowed): every restored thread then
  // drops all its capabilities (capset to empty sets) once it has created what it must.
  virtual bool spawned_child_drops_capabilities() const { return false; }
};

struct RestoreOptions {
  // Run ImageSource::verify_all() (checksums of every chunk) in validate_for_restore.
  bool verify_checksums = true;
  // Single-image restores: check the chunk checksums while filling the child instead, so each
  // chunk is read (and decompressed) once. validate_for_restore then skips verify_all (except
  // for an image holding a named /dev/shm file mapping, whose file a restore rewrites before
  // the pages are read), and restore_process checks each chunk it reads and then every chunk
  // it did not read (ImageSource::verify_unread), before the open files are touched and before
  // the point of no return: a damaged image is still refused with image_corrupt and nothing
  // of the job changed. Not for several images restored together (restore_tree): an earlier
  // process's files would be truncated before a later image is checked.
  bool checksums_while_filling = false;
  // Fill dense anonymous regions in transparent huge pages (README.md, "Huge pages"); also
  // turned on by FERRY_RESTORE_HUGE_PAGES=1 in the environment.
  bool huge_pages = false;
  // Lazy restore (README.md, "Lazy restore"; restore_process of one process only, not
  // restore_tree): private anonymous memory is filled by this object's server thread after the
  // program resumed. It must outlive the program's lazy period. nullptr: eager.
  LazyPages* lazy = nullptr;
  // restore_process runs validate_for_restore first unless the caller already did.
  bool validate = true;
  // Upper bound on the whole restore; the child is killed when it is exceeded (no hang).
  std::chrono::seconds timeout{300};
  // nullptr: the restored process is a fork() of the caller (its pid is whatever the kernel
  // gives). Otherwise it comes from spawner->spawn(threads[0].tid, ...).
  Spawner* spawner = nullptr;
  // Recreate every other thread with its image tid (clone3 set_tid). Needs
  // CAP_CHECKPOINT_RESTORE over the process's PID namespace and those ids free there (a
  // fresh namespace from launch::PidNamespace). false: threads get new ids; glibc's cached
  // ids then go stale (pthread_kill, robust and PI mutexes break; join and plain mutexes work).
  bool same_tids = false;
  // Debug/progress lines ("restore: built 42 regions"); may be empty. Called on the caller's
  // thread only.
  std::function<void(const std::string&)> log;
  // Called on the caller's thread after the last pre-PONR step, before the point of no return
  // (restore_process and restore_tree); an error fails the restore there, nothing of the job
  // touched but what pre-PONR does. `ferry restart` joins its job-record write here, which
  // runs meanwhile (its fsync took 0.1 s on a busy disk). May be empty.
  std::function<Result<void>()> before_ponr;
};

// Every check that can fail, before anything is created (see README.md for the list):
// image_foreign (ABI), image_version, cpu_incompatible (XSAVE components, area size),
// vdso_mismatch, file_changed (mapped and open files), image_corrupt (regions, page runs,
// references, checksums), address_conflict (no room for the restorer's own pages),
// unsupported (fd kinds this build cannot restore).
[[nodiscard]] Result<void> validate_for_restore(image::ImageSource& src, const RestoreOptions& opt);

// Creates the process as a child of the caller (or through opt.spawner), rebuilds it from src and lets it run from
// where it was checkpointed. Returns its pid; the caller waitpid()s it. On failure no process
// is left: before the point of no return the error of the failing step is returned, after it
// errc::restore_failed naming the step. Open regular files that were written after the
// checkpoint are truncated back to their checkpoint size (README.md, "Files").
[[nodiscard]] Result<pid_t> restore_process(image::ImageSource& src, const RestoreOptions& opt);

// One process of a checkpointed process tree (ids in the job's PID namespace, from the
// generation's manifest) and its image.
struct TreeProcess {
  image::ImageSource* src = nullptr;
  pid_t pid = 0, ppid = 0, pgid = 0, sid = 0;
  std::vector<std::pair<int32_t, int32_t>> shared_fds;  // {fd, parent_fd}: the parent's description
};

// Restores a whole process tree (members[0] is the root; every other member's parent comes
// before it) as restore_process does one process: the root from opt.spawner (or a fork of
// the caller), every other process forked by its restored parent, each rebuilt completely
// before any of them runs. Returns the root's pid. On failure every process created is
// killed and collected (see tree_restore.cpp).
[[nodiscard]] Result<pid_t> restore_tree(const std::vector<TreeProcess>& members, const RestoreOptions& opt);

// The first code the restore child runs (after fork or Spawner::spawn); async-signal-safe
// raw system calls only. Blocks all signals, asks for SIGKILL when its parent (`parent`, as
// getppid() sees it) dies, maps the 2-page gadget at `gadget`, writes one status byte (0 or
// an errno) to status_fd, closes every fd >= 3 (status_fd too: EOF tells the waiter it is
// done) and pauses until it is seized. Exits 127 on failure.
[[noreturn]] void bootstrap_restore_child(int status_fd, uint64_t gadget, uint64_t page, pid_t parent);

}  // namespace ferry::restore
