// SPDX-License-Identifier: Apache-2.0
// Parsers for /proc/PID/maps and /proc/PID/smaps: one MapEntry per VMA. Parsers take the text
// (unit-tested on fixtures in testdata/); read_* are the thin readers of the live files.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/common/result.hpp"

namespace ferry::proc {

// Kernel-named special mappings; `other` covers any other "[...]" name (e.g. "[anon:x]").
enum class Special { none, heap, stack, vdso, vvar, vvar_vclock, vsyscall, other };

struct MapEntry {
  uint64_t start = 0, end = 0;
  bool read = false, write = false, exec = false, shared = false;  // "rwxs" / "rwxp"
  uint64_t pgoff = 0;          // file offset in bytes
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t ino = 0;
  std::string name;            // the whole name column as printed ("/x (deleted)", "[heap]", "")
  std::string path;            // name without a trailing " (deleted)"
  bool deleted = false;        // name ended in " (deleted)"
  Special special = Special::none;

  uint32_t prot() const noexcept;  // PROT_* bits
  uint64_t size() const noexcept { return end - start; }
  bool anonymous() const noexcept { return ino == 0 && name.empty(); }
  bool is_memfd() const noexcept { return path.rfind("/memfd:", 0) == 0; }
  // MAP_SHARED|MAP_ANONYMOUS is backed by a shmem file that maps prints as "/dev/zero (deleted)"
  // (or "/SYSV..." for SysV shm).
  bool is_shared_anon() const noexcept { return shared && path == "/dev/zero" && deleted; }
};

Result<std::vector<MapEntry>> parse_maps(std::string_view text);
Result<std::vector<MapEntry>> read_maps(pid_t pid);

// Per-VMA numbers from smaps that capture uses (bytes).
struct SmapsEntry {
  uint64_t start = 0, end = 0;
  uint64_t rss = 0, anonymous = 0, swap = 0;
  bool dontcopy = false;    // VmFlags "dc": MADV_DONTFORK, a fork() child lacks the region
  bool wipeonfork = false;  // VmFlags "wf": MADV_WIPEONFORK, a fork() child sees zeros
  bool uffd_wp = false;     // VmFlags "uw": registered with a userfaultfd in write-protect mode
};
Result<std::vector<SmapsEntry>> parse_smaps(std::string_view text);
Result<std::vector<SmapsEntry>> read_smaps(pid_t pid);

}  // namespace ferry::proc
