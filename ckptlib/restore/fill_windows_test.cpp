// SPDX-License-Identifier: Apache-2.0
#include "restore/fill_windows.hpp"

#include <gtest/gtest.h>

namespace ferry::restore {
namespace {

constexpr uint64_t kBlock = 64 << 10;
constexpr uint64_t kChunk = 4 * kBlock;
constexpr uint64_t kChild = 0x7f0000000000;

// Generations 0..n-1 each hold every n-th block of `blocks` (generation k: blocks k, k+n, ...),
// stored one after the other in its own store, as a chain's incremental images do; listed in
// storage order.
std::vector<FillPiece> interleaved(uint32_t n, uint64_t blocks) {
  std::vector<FillPiece> v;
  for (uint32_t k = 0; k < n; ++k) {
    uint64_t off = 0;
    for (uint64_t b = k; b < blocks; b += n, off += kBlock)
      v.push_back({kChild + b * kBlock, kChild + b * kBlock, kBlock, {k, off, kChunk}});
  }
  return v;
}

// Every byte once, each where it was; windows in child order, no larger than max, pieces in
// storage order inside; each store's pieces in increasing storage order across windows.
void expect_plan(const std::vector<FillPiece>& in, const std::vector<FillWindow>& ws, uint64_t max) {
  uint64_t want = 0, got = 0;
  for (const auto& p : in) want += p.len;
  std::vector<uint64_t> store_next(16, 0);
  for (size_t w = 0; w < ws.size(); ++w) {
    EXPECT_LE(ws[w].size, max);
    if (w > 0) {
      EXPECT_GE(ws[w].child_base, ws[w - 1].child_base + ws[w - 1].size);
    }
    for (size_t i = 0; i < ws[w].pieces.size(); ++i) {
      const auto& p = ws[w].pieces[i];
      got += p.len;
      EXPECT_GE(p.child_addr, ws[w].child_base);
      EXPECT_LE(p.child_addr + p.len, ws[w].child_base + ws[w].size);
      EXPECT_EQ(p.child_addr - p.image_addr, in.front().child_addr - in.front().image_addr);
      EXPECT_GE(p.pos.offset, store_next[p.pos.store]) << "store " << p.pos.store << " goes backwards";
      store_next[p.pos.store] = p.pos.offset + p.len;
      if (i > 0) {
        const auto& a = ws[w].pieces[i - 1].pos;
        EXPECT_TRUE(a.store < p.pos.store || (a.store == p.pos.store && a.offset < p.pos.offset));
      }
    }
  }
  EXPECT_EQ(got, want);
}

TEST(FillWindows, InterleavedGenerationsMakeDenseWindows) {
  // 3 generations x 8 blocks over 24 blocks, windows of 6 blocks: 4 windows, 2 pieces of each
  // generation in each.
  auto in = interleaved(3, 24);
  auto ws = plan_fill_windows(in, 6 * kBlock);
  ASSERT_EQ(ws.size(), 4u);
  for (size_t j = 0; j < 4; ++j) {
    EXPECT_EQ(ws[j].child_base, kChild + 6 * j * kBlock);
    EXPECT_EQ(ws[j].size, 6 * kBlock);
    ASSERT_EQ(ws[j].pieces.size(), 6u);
    EXPECT_EQ(ws[j].pieces[0].pos.store, 0u);
    EXPECT_EQ(ws[j].pieces[5].pos.store, 2u);
  }
  expect_plan(in, ws, 6 * kBlock);
}

TEST(FillWindows, PiecesCrossingAWindowEndAreCut) {
  // One piece of 10 blocks, windows of 4: 4 + 4 + 2, storage offsets following.
  std::vector<FillPiece> in{{kChild, kChild, 10 * kBlock, {0, 2 * kBlock, kChunk}}};
  auto ws = plan_fill_windows(in, 4 * kBlock);
  ASSERT_EQ(ws.size(), 3u);
  EXPECT_EQ(ws[2].size, 2 * kBlock);
  EXPECT_EQ(ws[1].pieces.front().pos.offset, 6 * kBlock);
  EXPECT_EQ(ws[1].pieces.front().image_addr, kChild + 4 * kBlock);
  expect_plan(in, ws, 4 * kBlock);
}

TEST(FillWindows, GapsStartNewWindows) {
  // Pieces far apart in the child (heap, then stack) do not make a window span the gap.
  std::vector<FillPiece> in{{kChild, kChild, kBlock, {0, 0, kChunk}},
                            {0x7ffd00000000, 0x7ffd00000000, kBlock, {0, kBlock, kChunk}}};
  auto ws = plan_fill_windows(in, 8 * kBlock);
  ASSERT_EQ(ws.size(), 2u);
  EXPECT_EQ(ws[1].child_base, 0x7ffd00000000u);
  EXPECT_EQ(ws[1].size, kBlock);
}

TEST(FillWindows, AStoreOutOfAddressOrderMeansNoPlan) {
  // Store 0 keeps block 1 before block 0: destination order would read it backwards.
  std::vector<FillPiece> in{{kChild + kBlock, kChild + kBlock, kBlock, {0, 0, kChunk}},
                            {kChild, kChild, kBlock, {0, kBlock, kChunk}}};
  EXPECT_TRUE(plan_fill_windows(in, 8 * kBlock).empty());
}

}  // namespace
}  // namespace ferry::restore
