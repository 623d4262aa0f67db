// SPDX-License-Identifier: Apache-2.0
// /proc/PID/maps and smaps parsers (see maps.hpp).
#include "proc/maps.hpp"

#include <sys/mman.h>

#include <cctype>
#include <charconv>
#include <optional>

#include "ferry/common/fs.hpp"

namespace ferry::proc {

namespace {

// Splits off the next space-delimited field; leading spaces skipped.
std::string_view next_field(std::string_view& s) {
  size_t b = s.find_first_not_of(' ');
  if (b == std::string_view::npos) {
    s = {};
    return {};
  }
  s.remove_prefix(b);
  size_t e = s.find(' ');
  std::string_view f = s.substr(0, e);
  s.remove_prefix(e == std::string_view::npos ? s.size() : e);
  return f;
}

bool hex(std::string_view f, uint64_t& out) {
  auto r = std::from_chars(f.data(), f.data() + f.size(), out, 16);
  return r.ec == std::errc() && r.ptr == f.data() + f.size();
}

bool dec(std::string_view f, uint64_t& out) {
  auto r = std::from_chars(f.data(), f.data() + f.size(), out, 10);
  return r.ec == std::errc() && r.ptr == f.data() + f.size();
}

Special classify(std::string_view name) {
  if (name.empty() || name.front() != '[') return Special::none;
  if (name == "[heap]") return Special::heap;
  if (name == "[stack]") return Special::stack;
  if (name == "[vdso]") return Special::vdso;
  if (name == "[vvar]") return Special::vvar;
  if (name == "[vvar_vclock]") return Special::vvar_vclock;
  if (name == "[vsyscall]") return Special::vsyscall;
  return Special::other;
}

// A maps line starts with "START-END " (hex); smaps field lines ("Rss:  4 kB") do not.
bool is_vma_header(std::string_view line) {
  size_t dash = line.find('-');
  if (dash == 0 || dash == std::string_view::npos || dash > 16) return false;
  for (size_t i = 0; i < dash; ++i)
    if (!std::isxdigit(static_cast<unsigned char>(line[i]))) return false;
  return true;
}

Result<MapEntry> parse_line(std::string_view line) {
  auto bad = [&](const char* why) {
    return fail(errc::protocol, "parse maps line '" + std::string(line) + "': " + why);
  };
  MapEntry e;
  std::string_view rest = line;
  std::string_view range = next_field(rest), perms = next_field(rest), off = next_field(rest),
                   dev = next_field(rest), ino = next_field(rest);
  size_t dash = range.find('-');
  if (dash == std::string_view::npos || !hex(range.substr(0, dash), e.start) ||
      !hex(range.substr(dash + 1), e.end) || e.end < e.start)
    return bad("bad address range");
  if (perms.size() != 4) return bad("bad permissions");
  e.read = perms[0] == 'r';
  e.write = perms[1] == 'w';
  e.exec = perms[2] == 'x';
  e.shared = perms[3] == 's';
  if (!hex(off, e.pgoff)) return bad("bad offset");
  size_t colon = dev.find(':');
  uint64_t maj = 0, min = 0;
  if (colon == std::string_view::npos || !hex(dev.substr(0, colon), maj) || !hex(dev.substr(colon + 1), min))
    return bad("bad device");
  e.dev_major = static_cast<uint32_t>(maj);
  e.dev_minor = static_cast<uint32_t>(min);
  if (!dec(ino, e.ino)) return bad("bad inode");
  // The name is the rest after padding; it may itself contain spaces.
  size_t b = rest.find_first_not_of(' ');
  e.name = b == std::string_view::npos ? std::string() : std::string(rest.substr(b));
  constexpr std::string_view kDeleted = " (deleted)";
  e.path = e.name;
  if (e.name.size() > kDeleted.size() &&
      std::string_view(e.name).substr(e.name.size() - kDeleted.size()) == kDeleted) {
    e.deleted = true;
    e.path.resize(e.name.size() - kDeleted.size());
  }
  e.special = classify(e.name);
  return e;
}

template <typename F>
void for_each_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty()) f(line);
  }
}

}  // namespace

uint32_t MapEntry::prot() const noexcept {
  return (read ? PROT_READ : 0) | (write ? PROT_WRITE : 0) | (exec ? PROT_EXEC : 0);
}

Result<std::vector<MapEntry>> parse_maps(std::string_view text) {
  std::vector<MapEntry> out;
  std::optional<Error> err;
  for_each_line(text, [&](std::string_view line) {
    if (err) return;
    auto e = parse_line(line);
    if (!e) err = e.error();
    else out.push_back(std::move(*e));
  });
  if (err) return fail(*err);
  return out;
}

Result<std::vector<MapEntry>> read_maps(pid_t pid) {
  FERRY_TRY(text, fs::read_file("/proc/" + std::to_string(pid) + "/maps"));
  return parse_maps(text);
}

Result<std::vector<SmapsEntry>> parse_smaps(std::string_view text) {
  std::vector<SmapsEntry> out;
  std::optional<Error> err;
  for_each_line(text, [&](std::string_view line) {
    if (err) return;
    if (is_vma_header(line)) {
      auto e = parse_line(line);
      if (!e) {
        err = e.error();
        return;
      }
      out.push_back({e->start, e->end, 0, 0, 0});
      return;
    }
    if (out.empty()) return;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    std::string_view key = line.substr(0, colon), rest = line.substr(colon + 1);
    if (key == "VmFlags") {
      for (std::string_view f = next_field(rest); !f.empty(); f = next_field(rest)) {
        out.back().dontcopy |= f == "dc";
        out.back().wipeonfork |= f == "wf";
        out.back().uffd_wp |= f == "uw";
      }
      return;
    }
    uint64_t* slot = key == "Rss" ? &out.back().rss
                     : key == "Anonymous" ? &out.back().anonymous
                     : key == "Swap" ? &out.back().swap
                                     : nullptr;
    if (!slot) return;
    std::string_view num = next_field(rest);
    uint64_t kb = 0;
    if (!dec(num, kb)) {
      err = Error(errc::protocol, "parse smaps line '" + std::string(line) + "'");
      return;
    }
    *slot = kb * 1024;
  });
  if (err) return fail(*err);
  return out;
}

Result<std::vector<SmapsEntry>> read_smaps(pid_t pid) {
  FERRY_TRY(text, fs::read_file("/proc/" + std::to_string(pid) + "/smaps"));
  return parse_smaps(text);
}

}  // namespace ferry::proc
