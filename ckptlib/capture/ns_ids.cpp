// SPDX-License-Identifier: Apache-2.0
// NSpid parsing (see ns_ids.hpp).
#include "ns_ids.hpp"

#include <charconv>
#include <string>

#include "ferry/common/fs.hpp"

namespace ferry::capture {

std::vector<pid_t> parse_nspid(std::string_view text) { return parse_ns_line(text, "NSpid:"); }

std::vector<pid_t> parse_ns_line(std::string_view text, std::string_view kKey) {
  std::vector<pid_t> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    std::string_view line = text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    at = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.substr(0, kKey.size()) != kKey) continue;
    line.remove_prefix(kKey.size());
    while (!line.empty()) {
      size_t skip = line.find_first_not_of(" \t");
      if (skip == std::string_view::npos) break;
      line.remove_prefix(skip);
      pid_t v = 0;
      auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
      if (ec != std::errc()) break;
      out.push_back(v);
      line.remove_prefix(static_cast<size_t>(end - line.data()));
    }
    break;
  }
  return out;
}

Result<pid_t> innermost_id(pid_t pid, pid_t tid) {
  std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status";
  FERRY_TRY(text, fs::read_file(path));
  auto ids = parse_nspid(text);
  if (ids.empty()) return tid;
  return ids.back();
}

Result<TreeIds> tree_ids(pid_t pid) {
  FERRY_TRY(text, fs::read_file("/proc/" + std::to_string(pid) + "/status"));
  TreeIds t;
  auto last = [&](std::string_view key, pid_t dflt) {
    auto v = parse_ns_line(text, key);
    return v.empty() ? dflt : v.back();
  };
  t.pid = last("NSpid:", pid);
  t.pgid = last("NSpgid:", 0);
  t.sid = last("NSsid:", 0);
  auto pp = parse_ns_line(text, "PPid:");
  if (!pp.empty() && pp.front() > 0) {
    auto ppin = innermost_id(pp.front(), pp.front());
    t.ppid = ppin ? *ppin : 0;
  }
  return t;
}

}  // namespace ferry::capture
