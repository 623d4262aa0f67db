// SPDX-License-Identifier: Apache-2.0
// Restore of one checkpointed process from an image: validation (everything that can fail,
// before anything is created) and restore_process (fork, rebuild by ptrace, let it run).
// Rules of this folder: ckptlib/restore/README.md.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"

namespace ferry::restore {

struct RestoreOptions {
  // Run ImageSource::verify_all() (checksums of every chunk) in validate_for_restore.
  bool verify_checksums = true;
  // restore_process runs validate_for_restore first unless the caller already did.
  bool validate = true;
  // Upper bound on the whole restore; the child is killed when it is exceeded (no hang).
  std::chrono::seconds timeout{300};
  // Debug/progress lines ("restore: built 42 regions"); may be empty. Called on the caller's
  // thread only.
  std::function<void(const std::string&)> log;
};

// Every check that can fail, before anything is created (see README.md for the list):
// image_foreign (ABI), image_version, cpu_incompatible (XSAVE components, area size),
// vdso_mismatch, file_changed (mapped and open files), image_corrupt (regions, page runs,
// references, checksums), address_conflict (no room for the restorer's own pages),
// unsupported (more than one thread, fd kinds this build cannot restore).
[[nodiscard]] Result<void> validate_for_restore(image::ImageSource& src, const RestoreOptions& opt);

// Creates the process as a child of the caller, rebuilds it from src and lets it run from
// where it was checkpointed. Returns its pid; the caller waitpid()s it. On failure no process
// is left: before the point of no return the error of the failing step is returned, after it
// errc::restore_failed naming the step. Open regular files that were written after the
// checkpoint are truncated back to their checkpoint size (README.md, "Files").
[[nodiscard]] Result<pid_t> restore_process(image::ImageSource& src, const RestoreOptions& opt);

}  // namespace ferry::restore
