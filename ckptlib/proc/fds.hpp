// SPDX-License-Identifier: Apache-2.0
// Open file descriptors of a process: /proc/PID/fd (numbers and link targets) and
// /proc/PID/fdinfo/N (pos, flags). Parsers are pure; read_* read the live files.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/common/result.hpp"

namespace ferry::proc {

struct FdInfo {
  uint64_t pos = 0;
  uint32_t flags = 0;   // open flags in octal in the file; includes O_CLOEXEC when set
  uint64_t mnt_id = 0, ino = 0;
};
Result<FdInfo> parse_fdinfo(std::string_view text);
Result<FdInfo> read_fdinfo(pid_t pid, int fd);

struct FdLink {
  int fd = -1;
  std::string target;   // readlink: "/path", "/path (deleted)", "socket:[123]", "pipe:[45]",
                        //   "anon_inode:[eventfd]", "/memfd:name (deleted)", "/dev/pts/0"
};
// Sorted by fd.
Result<std::vector<FdLink>> list_fds(pid_t pid);

}  // namespace ferry::proc
