// SPDX-License-Identifier: Apache-2.0
// stat/status/limits/auxv/cmdline/children parsers (see task.hpp).
#include "proc/task.hpp"
#include "proc/text.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "ferry/common/fs.hpp"

namespace ferry::proc {

namespace {

std::string proc_path(pid_t pid, const char* what) {
  return "/proc/" + std::to_string(pid) + "/" + what;
}

template <typename T>
bool to_num(std::string_view f, T& out, int base = 10) {
  return parse_num(f, out, base);
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t')) ++i;
    size_t b = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\n' && s[i] != '\t') ++i;
    if (i > b) out.push_back(s.substr(b, i - b));
  }
  return out;
}

}  // namespace

Result<Stat> parse_stat(std::string_view text) {
  // comm may contain ')' and spaces: it ends at the LAST ')'.
  size_t open = text.find('('), close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return fail(errc::protocol, "parse /proc stat: no comm field");
  Stat s;
  if (!to_num(text.substr(0, open), s.pid)) return fail(errc::protocol, "parse /proc stat: bad pid");
  s.comm = std::string(text.substr(open + 1, close - open - 1));
  auto f = split_ws(text.substr(close + 1));  // f[i] is field i+3
  if (f.size() < 51 - 2) return fail(errc::protocol, "parse /proc/" + std::to_string(s.pid) + "/stat: only " +
                                                         std::to_string(f.size() + 2) + " fields");
  auto field = [&](int n) { return f[static_cast<size_t>(n - 3)]; };
  s.state = field(3).empty() ? '?' : field(3)[0];
  bool ok = to_num(field(4), s.ppid) && to_num(field(20), s.num_threads) &&
            to_num(field(26), s.start_code) && to_num(field(27), s.end_code) &&
            to_num(field(28), s.start_stack) && to_num(field(45), s.start_data) &&
            to_num(field(46), s.end_data) && to_num(field(47), s.start_brk) &&
            to_num(field(48), s.arg_start) && to_num(field(49), s.arg_end) &&
            to_num(field(50), s.env_start) && to_num(field(51), s.env_end);
  if (!ok) return fail(errc::protocol, "parse /proc/" + std::to_string(s.pid) + "/stat: bad number");
  return s;
}

Result<Stat> read_stat(pid_t pid) {
  FERRY_TRY(text, fs::read_file(proc_path(pid, "stat")));
  return parse_stat(text);
}

Result<Status> parse_status(std::string_view text) {
  Status st;
  Field f;
  while (next_field(text, f)) {
    std::string_view line = f.line, key = f.key, val = f.value;
    bool ok = true;
    if (key == "Umask") ok = to_num(val, st.umask, 8);
    else if (key == "Tgid") ok = to_num(val, st.tgid);
    else if (key == "PPid") ok = to_num(val, st.ppid);
    else if (key == "TracerPid") ok = to_num(val, st.tracer_pid);
    else if (key == "Threads") ok = to_num(val, st.threads);
    if (!ok) return fail(errc::protocol, "parse /proc status line '" + std::string(line) + "'");
  }
  return st;
}

Result<Status> read_status(pid_t pid) {
  FERRY_TRY(text, fs::read_file(proc_path(pid, "status")));
  return parse_status(text);
}

Result<std::vector<Limit>> parse_limits(std::string_view text) {
  // Row names as printed by fs/proc/base.c lnames[], in RLIMIT_* order.
  static const std::pair<const char*, int> kNames[] = {
      {"Max cpu time", RLIMIT_CPU},           {"Max file size", RLIMIT_FSIZE},
      {"Max data size", RLIMIT_DATA},         {"Max stack size", RLIMIT_STACK},
      {"Max core file size", RLIMIT_CORE},    {"Max resident set", RLIMIT_RSS},
      {"Max processes", RLIMIT_NPROC},        {"Max open files", RLIMIT_NOFILE},
      {"Max locked memory", RLIMIT_MEMLOCK},  {"Max address space", RLIMIT_AS},
      {"Max file locks", RLIMIT_LOCKS},       {"Max pending signals", RLIMIT_SIGPENDING},
      {"Max msgqueue size", RLIMIT_MSGQUEUE}, {"Max nice priority", RLIMIT_NICE},
      {"Max realtime priority", RLIMIT_RTPRIO}, {"Max realtime timeout", RLIMIT_RTTIME},
  };
  std::vector<Limit> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    for (const auto& [name, res] : kNames) {
      size_t len = std::strlen(name);
      // The name column is padded to 26 characters; match name followed by spaces.
      if (line.size() <= len || line.substr(0, len) != name || line[len] != ' ') continue;
      auto f = split_ws(line.substr(len));
      if (f.size() < 2) return fail(errc::protocol, "parse /proc limits line '" + std::string(line) + "'");
      Limit l;
      l.resource = res;
      auto val = [](std::string_view v, uint64_t& o) {
        if (v == "unlimited") {
          o = ~0ull;
          return true;
        }
        return to_num(v, o);
      };
      if (!val(f[0], l.soft) || !val(f[1], l.hard))
        return fail(errc::protocol, "parse /proc limits line '" + std::string(line) + "'");
      out.push_back(l);
      break;
    }
  }
  return out;
}

Result<std::vector<Limit>> read_rlimits(pid_t pid) {
  std::vector<Limit> out;
  for (int r = 0; r < RLIMIT_NLIMITS; ++r) {
    struct rlimit old {};
    if (::prlimit(pid, static_cast<__rlimit_resource>(r), nullptr, &old) != 0)
      return fail_errno("prlimit pid " + std::to_string(pid) + " resource " + std::to_string(r));
    out.push_back({r, old.rlim_cur, old.rlim_max});
  }
  return out;
}

Result<std::vector<uint64_t>> parse_auxv(std::string_view bytes) {
  if (bytes.size() % 16 != 0) return fail(errc::protocol, "parse auxv: size not a multiple of 16");
  std::vector<uint64_t> out(bytes.size() / 8);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  // Trim after the first AT_NULL pair.
  for (size_t i = 0; i + 1 < out.size(); i += 2) {
    if (out[i] == 0) {
      out.resize(i + 2);
      return out;
    }
  }
  return fail(errc::protocol, "parse auxv: no AT_NULL entry");
}

Result<std::vector<uint64_t>> read_auxv(pid_t pid) {
  FERRY_TRY(bytes, fs::read_file(proc_path(pid, "auxv")));
  return parse_auxv(bytes);
}

std::vector<std::string> parse_cmdline(std::string_view bytes) {
  std::vector<std::string> out;
  while (!bytes.empty()) {
    size_t z = bytes.find('\0');
    out.emplace_back(bytes.substr(0, z));
    bytes.remove_prefix(z == std::string_view::npos ? bytes.size() : z + 1);
  }
  return out;
}

Result<std::vector<std::string>> read_cmdline(pid_t pid) {
  FERRY_TRY(bytes, fs::read_file(proc_path(pid, "cmdline")));
  return parse_cmdline(bytes);
}

std::vector<pid_t> parse_children(std::string_view text) {
  std::vector<pid_t> out;
  for (auto f : split_ws(text)) {
    pid_t p = 0;
    if (to_num(f, p)) out.push_back(p);
  }
  return out;
}

Result<std::vector<pid_t>> list_threads(pid_t pid) {
  std::string dir = proc_path(pid, "task");
  DIR* d = ::opendir(dir.c_str());
  if (!d) return fail_errno("open " + dir);
  std::vector<pid_t> out;
  while (dirent* e = ::readdir(d)) {
    pid_t t = 0;
    if (to_num(std::string_view(e->d_name), t)) out.push_back(t);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<pid_t>> read_children(pid_t pid) {
  FERRY_TRY(tids, list_threads(pid));
  std::vector<pid_t> out;
  for (pid_t t : tids) {
    auto text = fs::read_file(proc_path(pid, "task/") + std::to_string(t) + "/children");
    if (!text) return fail(text.error());
    auto c = parse_children(*text);
    out.insert(out.end(), c.begin(), c.end());
  }
  return out;
}

Result<std::string> read_link(const std::string& path) {
  std::string buf(4096, '\0');
  ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size());
  if (n < 0) return fail_errno("readlink " + path);
  buf.resize(static_cast<size_t>(n));
  return buf;
}

}  // namespace ferry::proc
