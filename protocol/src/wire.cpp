// SPDX-License-Identifier: Apache-2.0
// Little-endian Writer/Reader. Every read checks the bytes left first.
#include "ferry/proto/wire.hpp"

namespace ferry::proto {

void Writer::str(std::string_view s) {
  u32(static_cast<std::uint32_t>(s.size()));
  out_.insert(out_.end(), s.begin(), s.end());
}

void Writer::patch_u32(std::size_t pos, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out_[pos + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::uint64_t Reader::get(int n) {
  if (!ok()) return 0;
  if (remaining() < static_cast<std::size_t>(n)) {
    fail("truncated at byte " + std::to_string(pos_) + ": need " + std::to_string(n) +
         ", have " + std::to_string(remaining()));
    return 0;
  }
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(in_[pos_ + i]) << (8 * i);
  pos_ += static_cast<std::size_t>(n);
  return v;
}

std::uint8_t Reader::u8() { return static_cast<std::uint8_t>(get(1)); }

std::string Reader::str(std::uint32_t max) {
  std::uint32_t n = u32();
  if (!ok()) return {};
  if (n > max) {
    fail("string of " + std::to_string(n) + " bytes exceeds limit " + std::to_string(max));
    return {};
  }
  if (n > remaining()) {
    fail("truncated string at byte " + std::to_string(pos_) + ": need " + std::to_string(n) +
         ", have " + std::to_string(remaining()));
    return {};
  }
  std::string s(reinterpret_cast<const char*>(in_.data() + pos_), n);
  pos_ += n;
  return s;
}

std::uint32_t Reader::count(std::size_t min_elem_bytes) {
  std::uint32_t n = u32();
  if (!ok()) return 0;
  if (min_elem_bytes == 0) min_elem_bytes = 1;
  if (static_cast<std::uint64_t>(n) * min_elem_bytes > remaining()) {
    fail("count " + std::to_string(n) + " at byte " + std::to_string(pos_) +
         " exceeds the bytes left (" + std::to_string(remaining()) + ")");
    return 0;
  }
  return n;
}

void Reader::skip(std::size_t n) {
  if (!ok()) return;
  if (n > remaining()) {
    fail("truncated at byte " + std::to_string(pos_));
    return;
  }
  pos_ += n;
}

}  // namespace ferry::proto
