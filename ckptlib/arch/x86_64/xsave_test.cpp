// SPDX-License-Identifier: Apache-2.0
// Tests of the XSAVE helpers against this machine's CPU.
#include "arch/x86_64/xsave.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace ferry::arch {
namespace {

TEST(Xsave, HostHasSseAndASaneSize) {
  uint64_t xcr0 = host_xcr0();
  EXPECT_EQ(xcr0 & (kXfeatX87 | kXfeatSse), kXfeatX87 | kXfeatSse);
  EXPECT_GE(xsave_size(), kXsaveMinSize);
  if (xcr0 & kXfeatAvx) {
    auto avx = xcomponent(2);
    EXPECT_EQ(avx.offset, 576u);
    EXPECT_EQ(avx.size, 256u);
  }
}

TEST(Xsave, ReadsHeaderWords) {
  std::vector<uint8_t> buf(kXsaveMinSize, 0);
  uint64_t bv = 0xa2, x = 0xe7;
  std::memcpy(buf.data() + 512, &bv, 8);
  std::memcpy(buf.data() + 464, &x, 8);
  EXPECT_EQ(xstate_bv(buf), 0xa2u);
  EXPECT_EQ(ptrace_xcr0(buf), 0xe7u);
  EXPECT_EQ(xstate_bv(std::span<const uint8_t>(buf.data(), 100)), 0u);
}

}  // namespace
}  // namespace ferry::arch
