// SPDX-License-Identifier: Apache-2.0
// Content hashes used in images and manifests: XXH3-64 for chunk checksums (fast, ~10+ GB/s)
// and XXH3-128 (as 32 hex digits) for file identity.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "ferry/common/result.hpp"

namespace ferry::hash {

uint64_t xxh3_64(std::span<const std::byte> data) noexcept;
std::string xxh3_128_hex(std::span<const std::byte> data);

// Streaming XXH3-64 for data that arrives in pieces.
class Xxh3Stream {
public:
  Xxh3Stream();
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void update(std::span<const std::byte> data) noexcept;
  uint64_t digest() const noexcept;

private:
  void* state_;
};

// XXH3-128 of a whole file, read in large blocks; hex string.
Result<std::string> file_xxh3_128(const std::string& path);
Result<std::string> fd_xxh3_128(int fd);  // from offset 0 with pread; fd's offset unchanged

}  // namespace ferry::hash
