// SPDX-License-Identifier: Apache-2.0
// Parsers for per-process /proc files other than maps and fds: stat (mm fields), status,
// limits, auxv, cmdline, task/*/children. Text parsers are pure; read_* read the live files.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/common/result.hpp"

namespace ferry::proc {

// Fields of /proc/PID/stat (man proc(5): field numbers 1-based).
struct Stat {
  int32_t pid = 0;          // 1
  std::string comm;         // 2, without parentheses (may contain spaces and ')')
  char state = '?';         // 3
  int32_t ppid = 0;         // 4
  int64_t num_threads = 0;  // 20
  uint64_t start_code = 0, end_code = 0, start_stack = 0;  // 26 27 28
  uint64_t start_data = 0, end_data = 0, start_brk = 0;    // 45 46 47
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;  // 48 49 50 51
};
Result<Stat> parse_stat(std::string_view text);
Result<Stat> read_stat(pid_t pid);

struct Status {
  uint32_t umask = 022;
  int32_t tgid = 0, ppid = 0;
  int32_t tracer_pid = 0;
  uint32_t threads = 0;
};
Result<Status> parse_status(std::string_view text);
Result<Status> read_status(pid_t pid);

struct Limit {
  int resource = 0;               // RLIMIT_*
  uint64_t soft = 0, hard = 0;    // RLIM_INFINITY (~0) for "unlimited"
};
// /proc/PID/limits (text form); rows with unknown names are skipped.
Result<std::vector<Limit>> parse_limits(std::string_view text);
// Exact values through prlimit(pid, r, NULL, &old) for every RLIMIT_*.
Result<std::vector<Limit>> read_rlimits(pid_t pid);

// /proc/PID/auxv: (type, value) u64 pairs up to and including AT_NULL.
Result<std::vector<uint64_t>> parse_auxv(std::string_view bytes);
Result<std::vector<uint64_t>> read_auxv(pid_t pid);

// /proc/PID/cmdline: NUL-separated arguments.
std::vector<std::string> parse_cmdline(std::string_view bytes);
Result<std::vector<std::string>> read_cmdline(pid_t pid);

// Space-separated pids of /proc/PID/task/TID/children; read_children unions all threads.
std::vector<pid_t> parse_children(std::string_view text);
Result<std::vector<pid_t>> read_children(pid_t pid);

// Thread ids from /proc/PID/task.
Result<std::vector<pid_t>> list_threads(pid_t pid);

// readlink of /proc/PID/<what> (exe, cwd, fd/N, map_files/S-E).
Result<std::string> read_link(const std::string& path);

}  // namespace ferry::proc
