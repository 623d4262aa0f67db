// SPDX-License-Identifier: Apache-2.0
// XSAVE layout and CPU queries (see xsave.hpp).
#include "arch/x86_64/xsave.hpp"

#include <cpuid.h>

#include <cstring>

namespace ferry::arch {

namespace {
uint64_t load_u64(std::span<const uint8_t> b, size_t off) noexcept {
  if (b.size() < off + 8) return 0;
  uint64_t v;
  std::memcpy(&v, b.data() + off, 8);
  return v;
}
}  // namespace

uint64_t xstate_bv(std::span<const uint8_t> xsave) noexcept {
  return load_u64(xsave, kXsaveHeaderOffset);
}

uint64_t ptrace_xcr0(std::span<const uint8_t> xsave) noexcept {
  return load_u64(xsave, kXsaveSwReservedOffset);
}

uint32_t xsave_size() noexcept {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(0xD, 0, &a, &b, &c, &d)) return 0;
  return b;
}

uint64_t host_xcr0() noexcept {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  if (!(c & (1u << 27))) return 0;  // OSXSAVE: xgetbv would fault otherwise
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

XComponent xcomponent(unsigned i) noexcept {
  if (i < 2 || i > 62) return {};
  unsigned a, b, c, d;
  if (!__get_cpuid_count(0xD, i, &a, &b, &c, &d)) return {};
  return {b, a};
}

}  // namespace ferry::arch
