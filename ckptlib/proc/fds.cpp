// SPDX-License-Identifier: Apache-2.0
// fd listing and fdinfo parser (see fds.hpp).
#include "proc/fds.hpp"

#include <dirent.h>

#include <algorithm>
#include <charconv>

#include "ferry/common/fs.hpp"
#include "proc/task.hpp"
#include "proc/text.hpp"

namespace ferry::proc {

Result<FdInfo> parse_fdinfo(std::string_view text) {
  FdInfo fi;
  bool have_pos = false, have_flags = false;
  Field f;
  while (next_field(text, f)) {
    std::string_view line = f.line, key = f.key, val = f.value;
    size_t b = val.find_first_not_of(" \t");
    if (b == std::string_view::npos) continue;
    val.remove_prefix(b);
    auto num = [&](auto& out, int base) {
      auto r = std::from_chars(val.data(), val.data() + val.size(), out, base);
      return r.ec == std::errc();
    };
    bool ok = true;
    if (key == "pos") ok = have_pos = num(fi.pos, 10);
    else if (key == "flags") ok = have_flags = num(fi.flags, 8);
    else if (key == "mnt_id") ok = num(fi.mnt_id, 10);
    else if (key == "ino") ok = num(fi.ino, 10);
    if (!ok) return fail(errc::protocol, "parse fdinfo line '" + std::string(line) + "'");
  }
  if (!have_pos || !have_flags) return fail(errc::protocol, "parse fdinfo: no pos or flags line");
  return fi;
}

Result<FdInfo> read_fdinfo(pid_t pid, int fd) {
  std::string path = "/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd);
  FERRY_TRY(text, fs::read_file(path));
  auto r = parse_fdinfo(text);
  if (!r) return fail(r.error().wrap(path));
  return r;
}

Result<std::vector<FdLink>> list_fds(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return fail_errno("open " + dir);
  std::vector<int> nums;
  while (dirent* e = ::readdir(d)) {
    int fd = -1;
    std::string_view n(e->d_name);
    auto r = std::from_chars(n.data(), n.data() + n.size(), fd);
    if (r.ec == std::errc() && r.ptr == n.data() + n.size()) nums.push_back(fd);
  }
  ::closedir(d);
  std::sort(nums.begin(), nums.end());
  std::vector<FdLink> out;
  for (int fd : nums) {
    auto target = read_link(dir + "/" + std::to_string(fd));
    if (!target) {
      if (target.error().code() == std::error_code(ENOENT, std::system_category())) continue;  // closed meanwhile
      return fail(target.error());
    }
    out.push_back({fd, std::move(*target)});
  }
  return out;
}

}  // namespace ferry::proc
