// SPDX-License-Identifier: Apache-2.0
// Little-endian primitives of the ferry wire format: a Writer that appends to a byte vector
// and a bounds-checked Reader over untrusted bytes. Layouts are described in PROTOCOL.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::proto {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// Limits a decoder enforces before allocating anything (see PROTOCOL.md "Limits").
inline constexpr std::uint32_t kMaxFrameBody = 16u << 20;  // 16 MiB: a status of a big cluster fits
inline constexpr std::uint32_t kMaxString = 1u << 20;      // 1 MiB: argv elements, env, reasons
inline constexpr std::uint32_t kMaxCredential = 4096;      // a MUNGE credential is ~200-400 bytes

// Appends fixed-width little-endian integers and length-prefixed strings. Never fails.
class Writer {
public:
  explicit Writer(Bytes& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) { put(v, 2); }
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void i32(std::int32_t v) { put(static_cast<std::uint32_t>(v), 4); }
  void i64(std::int64_t v) { put(static_cast<std::uint64_t>(v), 8); }
  void str(std::string_view s);  // u32 length + bytes (no terminator)
  void raw(ByteView b) { out_.insert(out_.end(), b.begin(), b.end()); }
  std::size_t size() const noexcept { return out_.size(); }
  // Overwrites 4 bytes at pos (used to patch the frame length).
  void patch_u32(std::size_t pos, std::uint32_t v);

private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  Bytes& out_;
};

// Reads from untrusted bytes. The first failure is sticky: every later read returns zero
// values and ok() stays false, so a decoder reads all fields and checks once. The reason
// of the first failure is kept for the error message.
class Reader {
public:
  explicit Reader(ByteView in) : in_(in) {}
  std::uint8_t u8();
  std::uint16_t u16() { return static_cast<std::uint16_t>(get(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(get(4)); }
  std::uint64_t u64() { return get(8); }
  std::int32_t i32() { return static_cast<std::int32_t>(static_cast<std::uint32_t>(get(4))); }
  std::int64_t i64() { return static_cast<std::int64_t>(get(8)); }
  std::string str(std::uint32_t max = kMaxString);
  // A count of elements that follow; each element takes at least min_elem_bytes, so a count
  // larger than the bytes left is refused before anything is allocated.
  std::uint32_t count(std::size_t min_elem_bytes = 1);
  ByteView rest() const noexcept { return in_.subspan(pos_); }
  std::size_t remaining() const noexcept { return in_.size() - pos_; }
  std::size_t position() const noexcept { return pos_; }
  void skip(std::size_t n);

  bool ok() const noexcept { return error_.empty(); }
  const std::string& error() const noexcept { return error_; }
  void fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }

private:
  std::uint64_t get(int n);
  ByteView in_;
  std::size_t pos_ = 0;
  std::string error_;
};

}  // namespace ferry::proto
