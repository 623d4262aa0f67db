// SPDX-License-Identifier: Apache-2.0
// Tests of the rseq critical-section decision.
#include "arch/x86_64/rseq_fixup.hpp"

#include <gtest/gtest.h>

namespace ferry::arch {
namespace {

constexpr uint32_t kSig = 0x53053053;  // glibc's RSEQ_SIG on x86

RseqCs section() { return {0, 0, 0x401000, 0x40, 0x401100}; }

TEST(RseqFixup, InsideTheSectionAborts) {
  EXPECT_EQ(rseq_verdict(section(), 0x401000, kSig, kSig), RseqVerdict::abort);
  EXPECT_EQ(rseq_verdict(section(), 0x40103f, kSig, kSig), RseqVerdict::abort);
}

TEST(RseqFixup, OutsideTheSectionStays) {
  EXPECT_EQ(rseq_verdict(section(), 0x401040, kSig, kSig), RseqVerdict::outside) << "post-commit ip";
  EXPECT_EQ(rseq_verdict(section(), 0x400fff, kSig, kSig), RseqVerdict::outside) << "before start";
  EXPECT_EQ(rseq_verdict(section(), 0x401100, kSig, kSig), RseqVerdict::outside) << "at the abort handler";
}

TEST(RseqFixup, DescriptorsTheKernelRefusesAreLeftAlone) {
  auto v1 = section();
  v1.version = 1;
  EXPECT_EQ(rseq_verdict(v1, 0x401010, kSig, kSig), RseqVerdict::invalid);
  EXPECT_EQ(rseq_verdict(section(), 0x401010, 0x12345678, kSig), RseqVerdict::invalid) << "wrong signature";
  auto inside = section();
  inside.abort_ip = 0x401020;
  EXPECT_EQ(rseq_verdict(inside, 0x401010, kSig, kSig), RseqVerdict::invalid) << "abort_ip in the section";
  auto wrap = section();
  wrap.post_commit_offset = ~0ull;
  EXPECT_EQ(rseq_verdict(wrap, 0x401010, kSig, kSig), RseqVerdict::invalid);
  auto kernel = section();
  kernel.abort_ip = 0xffffffff81000000ull;
  EXPECT_EQ(rseq_verdict(kernel, 0x401010, kSig, kSig), RseqVerdict::invalid);
}

}  // namespace
}  // namespace ferry::arch
