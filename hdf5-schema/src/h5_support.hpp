// SPDX-License-Identifier: Apache-2.0
// Private helpers of the image writer and reader: RAII HDF5 ids, the silenced HDF5 error stack
// turned into text, and the canonical little-endian serialization hashed into metadata checksums.
#pragma once

#include <hdf5.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "ferry/common/hash.hpp"
#include "ferry/common/result.hpp"

namespace ferry::image::h5 {

static_assert(std::endian::native == std::endian::little,
              "canonical serialization and raw register blocks assume a little-endian host");

// Owns one HDF5 identifier of any kind (file, group, dataset, attribute, type, space, plist).
class Id {
public:
  Id() = default;
  explicit Id(hid_t id) noexcept : id_(id) {}
  Id(Id&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  Id& operator=(Id&& o) noexcept {
    if (this != &o) reset(std::exchange(o.id_, H5I_INVALID_HID));
    return *this;
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  ~Id() { reset(); }

  hid_t get() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  // Closes the held id (by its kind); returns false if HDF5 reported an error while closing.
  bool reset(hid_t id = H5I_INVALID_HID) noexcept;

private:
  hid_t id_ = H5I_INVALID_HID;
};

// Turns off HDF5's printing of its error stack (once per process); our errors say it instead.
void silence_errors();
// The innermost message on HDF5's default error stack ("truncated file: eof = ..."), then
// clears the stack. Empty if there is none.
std::string take_error();

// "path: what (HDF5: detail)" as an image_corrupt error.
Error corrupt(const std::string& file, const std::string& what);
// An error from a failed HDF5 call while writing (errc::image_corrupt is wrong for a writer:
// these are I/O failures, reported with EIO and HDF5's own reason).
Error write_error(const std::string& file, const std::string& what);

// A variable-length UTF-8 string type.
Id make_string_type();

bool link_exists(hid_t loc, std::string_view path);
bool attr_exists(hid_t obj, std::string_view name);

// Canonical serialization for checksums (SCHEMA.md "Checksums"): integers little-endian at
// their stored width, strings as u64 byte length + bytes, fed to a streaming XXH3-64.
class Canon {
public:
  void u8(uint8_t v) noexcept { bytes(&v, 1); }
  void u32(uint32_t v) noexcept { bytes(&v, 4); }
  void u64(uint64_t v) noexcept { bytes(&v, 8); }
  void str(std::string_view s) noexcept {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  void bytes(const void* p, size_t n) noexcept {
    stream_.update(std::span<const std::byte>(static_cast<const std::byte*>(p), n));
  }
  uint64_t digest() const noexcept { return stream_.digest(); }

private:
  hash::Xxh3Stream stream_;
};

// Scalar u64 attribute helpers (checksums).
bool write_u64_attr(hid_t obj, std::string_view name, uint64_t value);
// Returns false if missing or unreadable.
bool read_u64_attr(hid_t obj, std::string_view name, uint64_t& value);
bool write_string_attr(hid_t obj, std::string_view name, const std::string& value);
bool read_string_attr(hid_t obj, std::string_view name, std::string& value);

}  // namespace ferry::image::h5
