// SPDX-License-Identifier: Apache-2.0
// x86-64 general registers: indices into struct user_regs_struct (NT_PRSTATUS, 27 u64, 216
// bytes) as stored in image::Thread::regs, and conversions between the two representations.
#pragma once

#include <sys/user.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace ferry::arch {

// Order of struct user_regs_struct (arch/x86/include/asm/user_64.h). Never reorder: images
// store registers in this order.
enum RegIndex : unsigned {
  kR15 = 0, kR14, kR13, kR12, kRbp, kRbx, kR11, kR10, kR9, kR8, kRax, kRcx, kRdx, kRsi, kRdi,
  kOrigRax, kRip, kCs, kEflags, kRsp, kSs, kFsBase, kGsBase, kDs, kEs, kFs, kGs,
  kNumRegs
};
static_assert(kNumRegs == 27);
static_assert(sizeof(user_regs_struct) == kNumRegs * sizeof(uint64_t));

using RegArray = std::array<uint64_t, kNumRegs>;

inline RegArray to_array(const user_regs_struct& r) noexcept {
  RegArray a;
  std::memcpy(a.data(), &r, sizeof r);
  return a;
}

inline user_regs_struct from_array(const RegArray& a) noexcept {
  user_regs_struct r;
  std::memcpy(&r, a.data(), sizeof r);
  return r;
}

// Code segment selectors: a 64-bit process runs with cs 0x33; 0x23 means a 32-bit (i386)
// process or a 64-bit one that far-jumped into compat mode. Either way ferry refuses it.
inline constexpr uint64_t kUserCs64 = 0x33;
inline constexpr uint64_t kUserCs32 = 0x23;

}  // namespace ferry::arch
