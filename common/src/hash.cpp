// SPDX-License-Identifier: Apache-2.0
#include "ferry/common/hash.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "ferry/common/huge_buffer.hpp"
#include "ferry/common/unique_fd.hpp"
#include "hash_avx2.hpp"

namespace ferry::hash {

namespace {
// The chunk checksums (restore reads and checks every byte it places) go through the AVX2
// build when the CPU has it: ~1.6x faster here (hash_avx2.cpp).
const bool kAvx2 = __builtin_cpu_supports("avx2");
}  // namespace

uint64_t xxh3_64(std::span<const std::byte> data) noexcept {
  if (kAvx2) return avx2::xxh3_64(data.data(), data.size());
  return XXH3_64bits(data.data(), data.size());
}

static std::string hex128(XXH128_hash_t h) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return buf;
}

std::string xxh3_128_hex(std::span<const std::byte> data) {
  return hex128(XXH3_128bits(data.data(), data.size()));
}

Xxh3Stream::Xxh3Stream() : state_(XXH3_createState()) {
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
}
Xxh3Stream::~Xxh3Stream() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void Xxh3Stream::update(std::span<const std::byte> data) noexcept {
  if (kAvx2) {
    avx2::xxh3_64_update(state_, data.data(), data.size());
    return;
  }
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data.data(), data.size());
}
uint64_t Xxh3Stream::digest() const noexcept {
  return XXH3_64bits_digest(static_cast<XXH3_state_t*>(state_));
}

Result<std::string> fd_xxh3_128(int fd) {
  // One buffer per thread, in huge pages: a checkpoint hashes several libraries, and a fresh
  // 1 MiB of 4 KiB pages each time cost 256 first-touch faults on the project VM.
  thread_local HugeBuffer buf;
  if (!buf.ensure(2u << 20)) return fail_errno("allocate a hash buffer", ENOMEM);
  XXH3_state_t* st = XXH3_createState();
  XXH3_128bits_reset(st);
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      XXH3_freeState(st);
      return fail_errno("read for hashing", err);
    }
    if (n == 0) break;
    XXH3_128bits_update(st, buf.data(), static_cast<size_t>(n));
    off += n;
  }
  auto h = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  return hex128(h);
}

Result<std::string> file_xxh3_128(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  auto r = fd_xxh3_128(fd.get());
  if (!r) return fail(r.error().wrap("hash " + path));
  return r;
}

}  // namespace ferry::hash
