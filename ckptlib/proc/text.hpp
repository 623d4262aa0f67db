// SPDX-License-Identifier: Apache-2.0
// Tiny helpers for the "key: value" text of /proc files (status, fdinfo, timers): trimming,
// strict number parsing, and walking the fields. Shared by proc/ and capture/ parsers.
#pragma once

#include <charconv>
#include <string_view>

namespace ferry::proc {

inline std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\n");
  return s.substr(b, e - b + 1);
}

// Parses all of `s` (surrounding blanks ignored) as a number in `base`; false otherwise.
template <typename T>
bool parse_num(std::string_view s, T& out, int base = 10) {
  s = trim(s);
  auto r = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

struct Field {
  std::string_view line, key, value;  // value as written after the colon, untrimmed
};

// Takes the next "key: value" line off `text` into `f`, skipping lines without a colon.
// Returns false when the text is used up.
inline bool next_field(std::string_view& text, Field& f) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    f = {line, line.substr(0, colon), line.substr(colon + 1)};
    return true;
  }
  return false;
}

}  // namespace ferry::proc
