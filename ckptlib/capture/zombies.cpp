// SPDX-License-Identifier: Apache-2.0
// Zombie children: detection and their record (see zombies.hpp).
#include "zombies.hpp"

#include <string>

#include "ferry/common/fs.hpp"
#include "ns_ids.hpp"
#include "proc/task.hpp"

namespace ferry::capture {

bool is_unreaped_zombie(pid_t pid) {
  auto st = proc::read_stat(pid);
  if (!st || (st->state != 'Z' && st->state != 'X')) return false;
  auto threads = proc::list_threads(pid);
  return !threads || threads->size() <= 1;
}

Result<image::Zombie> read_zombie(pid_t pid) {
  const std::string what = "read exited child " + std::to_string(pid);
  FERRY_TRY(text, fs::read_file("/proc/" + std::to_string(pid) + "/stat"));
  // Fields after the comm's closing parenthesis start with field 3 (state); exit_code is 52.
  size_t at = text.rfind(')');
  if (at == std::string::npos) return fail(errc::image_corrupt, what + ": unreadable stat");
  int field = 2;
  size_t pos = at + 1;
  std::string value;
  while (pos < text.size() && field < 52) {
    while (pos < text.size() && text[pos] == ' ') ++pos;
    size_t end = text.find_first_of(" \n", pos);
    if (end == std::string::npos) end = text.size();
    ++field;
    if (field == 52) value = text.substr(pos, end - pos);
    pos = end;
  }
  if (value.empty())
    return fail(errc::unsupported, what + ": this kernel's /proc/PID/stat has no exit_code field");
  FERRY_TRY(ids, tree_ids(pid));
  image::Zombie z;
  z.pid = ids.pid;
  z.status = static_cast<int32_t>(std::stol(value));
  z.pgid = ids.pgid;
  z.sid = ids.sid;
  return z;
}

}  // namespace ferry::capture
