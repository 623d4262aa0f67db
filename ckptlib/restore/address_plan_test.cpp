// SPDX-License-Identifier: Apache-2.0
// Unit tests of the pure address planning of restore on synthetic layouts.
#include "restore/address_plan.hpp"

#include <gtest/gtest.h>

namespace ferry::restore {
namespace {

using image::Region;
using image::RegionKind;

constexpr uint64_t kPage = 4096;

Region reg(uint64_t s, uint64_t e, RegionKind k = RegionKind::anon_private, std::string name = "") {
  Region r;
  r.start = s;
  r.end = e;
  r.kind = k;
  r.prot = 3;
  r.name = std::move(name);
  return r;
}

TEST(AddressPlan, ParsesMaps) {
  auto m = parse_maps(
      "55d0c0000000-55d0c0002000 r--p 00000000 fe:00 12 /usr/bin/cat\n"
      "7ffd1000-7ffd5000 r--p 00000000 00:00 0                          [vvar]\n"
      "7ffd7000-7ffd9000 r-xp 00000000 00:00 0 [vdso]\n"
      "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n");
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].range, (Range{0x55d0c0000000, 0x55d0c0002000}));
  EXPECT_EQ(m[0].name, "/usr/bin/cat");
  EXPECT_EQ(m[1].name, "[vvar]");
  EXPECT_EQ(m[3].name, "");
  auto v = live_vdso(m);
  EXPECT_EQ(v.vdso, (Range{0x7ffd7000, 0x7ffd9000}));
  EXPECT_EQ(v.span(), (Range{0x7ffd1000, 0x7ffd9000}));
}

TEST(AddressPlan, FindFreeSkipsBusyAndKeepsGuards) {
  std::vector<Range> busy = {{kPlanHint, kPlanHint + 10 * kPage}};
  uint64_t at = find_free(busy, 4 * kPage, kPage);
  EXPECT_EQ(at, kPlanHint + 11 * kPage);  // one guard page after the busy range
  busy.push_back({kPlanHint + 12 * kPage, kPlanHint + 13 * kPage});
  at = find_free(busy, 4 * kPage, kPage);
  EXPECT_EQ(at, kPlanHint + 14 * kPage);
}

TEST(AddressPlan, FreeRegionsBuiltInPlaceOthersStaged) {
  std::vector<MapEntry> live = {{{0x400000, 0x500000}, "/usr/bin/ferry"},
                                {{0x7f0000000000, 0x7f0000100000}, "libc"},
                                {{0x7ffff7ff0000, 0x7ffff7ff4000}, "[vvar]"},
                                {{0x7ffff7ff4000, 0x7ffff7ff6000}, "[vvar_vclock]"},
                                {{0x7ffff7ff6000, 0x7ffff7ff8000}, "[vdso]"}};
  std::vector<Region> img = {reg(0x10000, 0x20000),                       // free: in place
                             reg(0x480000, 0x490000),                     // inside ferry: staged
                             reg(0x7e0000000000, 0x7e0000010000),         // free
                             reg(0x7ef000000000, 0x7ef000004000, RegionKind::vvar),
                             reg(0x7ef000004000, 0x7ef000006000, RegionKind::vvar_vclock),
                             reg(0x7ef000006000, 0x7ef000008000, RegionKind::vdso)};
  auto plan = plan_addresses(img, live, kPage);
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_EQ(plan->build_addr[0], 0x10000u);
  EXPECT_FALSE(plan->staged[0]);
  EXPECT_TRUE(plan->staged[1]);
  EXPECT_NE(plan->build_addr[1], 0x480000u);
  EXPECT_EQ(plan->build_addr[2], 0x7e0000000000u);
  EXPECT_EQ(plan->build_addr[3], 0u);  // special kinds are not built
  EXPECT_EQ(plan->vdso_temp, 0u);      // no overlap between live and image triple
  // Gadget and staging avoid both layouts and each other.
  std::vector<Range> all;
  for (auto& m : live) all.push_back(m.range);
  for (auto& r : img) all.push_back({r.start, r.end});
  Range g{plan->gadget, plan->gadget + kGadgetPages * kPage};
  Range s{plan->build_addr[1], plan->build_addr[1] + 0x10000};
  for (auto& a : all) {
    EXPECT_FALSE(a.overlaps(g));
    EXPECT_FALSE(a.overlaps(s));
  }
  EXPECT_FALSE(g.overlaps(s));
}

TEST(AddressPlan, OverlappingVdsoGoesThroughParkingSpot) {
  std::vector<MapEntry> live = {{{0x7ffff7ff0000, 0x7ffff7ff4000}, "[vvar]"},
                                {{0x7ffff7ff4000, 0x7ffff7ff6000}, "[vvar_vclock]"},
                                {{0x7ffff7ff6000, 0x7ffff7ff8000}, "[vdso]"}};
  std::vector<Region> img = {reg(0x7ffff7ff2000, 0x7ffff7ff6000, RegionKind::vvar),
                             reg(0x7ffff7ff6000, 0x7ffff7ff8000, RegionKind::vvar_vclock),
                             reg(0x7ffff7ff8000, 0x7ffff7ffa000, RegionKind::vdso)};
  auto plan = plan_addresses(img, live, kPage);
  ASSERT_TRUE(plan);
  ASSERT_NE(plan->vdso_temp, 0u);
  auto moves = plan_vdso_moves(live_vdso(live), image_vdso(img), plan->vdso_temp);
  ASSERT_TRUE(moves) << moves.error().message();
  ASSERT_EQ(moves->size(), 6u);
  EXPECT_EQ((*moves)[0].to, plan->vdso_temp);
  EXPECT_EQ((*moves)[3].from, plan->vdso_temp);
  EXPECT_EQ((*moves)[3].to, 0x7ffff7ff2000u);
  EXPECT_EQ((*moves)[5].to, 0x7ffff7ff8000u);
}

TEST(AddressPlan, VdsoMovesDirectAndSizeMismatch) {
  VdsoTriple live{{0x1000000, 0x1004000}, {0x1004000, 0x1006000}, {0x1006000, 0x1008000}};
  VdsoTriple target{{0x2000000, 0x2004000}, {0x2004000, 0x2006000}, {0x2006000, 0x2008000}};
  auto moves = plan_vdso_moves(live, target, 0);
  ASSERT_TRUE(moves);
  ASSERT_EQ(moves->size(), 3u);
  EXPECT_EQ((*moves)[2].to, 0x2006000u);
  EXPECT_TRUE(plan_vdso_moves(live, live, 0)->empty());
  target.vdso.end += kPage;
  auto bad = plan_vdso_moves(live, target, 0);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().is(errc::vdso_mismatch));
}

TEST(AddressPlan, SubtractKeepsOnlyUnwanted) {
  std::vector<Range> mapped = {{0x1000, 0x9000}, {0x10000, 0x12000}};
  auto u = subtract(mapped, {{0x2000, 0x3000}, {0x8000, 0x11000}});
  ASSERT_EQ(u.size(), 3u);
  EXPECT_EQ(u[0], (Range{0x1000, 0x2000}));
  EXPECT_EQ(u[1], (Range{0x3000, 0x8000}));
  EXPECT_EQ(u[2], (Range{0x11000, 0x12000}));
}

TEST(AddressPlan, PageWritesSplitAtRegionsAndTranslate) {
  std::vector<Region> img = {reg(0x10000, 0x12000), reg(0x12000, 0x14000),
                             reg(0x20000, 0x21000, RegionKind::file_shared)};
  std::vector<image::PageRun> runs = {{0x11000, 2, 0}};
  auto w = plan_page_writes(runs, img, {0x10000, 0x500000, 0x20000}, kPage);
  ASSERT_TRUE(w) << w.error().message();
  ASSERT_EQ(w->size(), 2u);
  EXPECT_EQ((*w)[0].child_addr, 0x11000u);
  EXPECT_EQ((*w)[1].image_addr, 0x12000u);
  EXPECT_EQ((*w)[1].child_addr, 0x500000u);
  auto outside = plan_page_writes({{0x15000, 1, 0}}, img, {}, kPage);
  ASSERT_FALSE(outside);
  EXPECT_TRUE(outside.error().is(errc::image_corrupt));
  auto shared = plan_page_writes({{0x20000, 1, 0}}, img, {}, kPage);
  ASSERT_FALSE(shared);
}

TEST(AddressPlan, HugePagesOnlyForDenseAnonymousRegionsInPlace) {
  constexpr uint64_t M = 1 << 20;
  std::vector<Region> img = {reg(0x40000000, 0x40000000 + 8 * M),                    // dense
                             reg(0x50000000, 0x50000000 + 8 * M),                    // sparse
                             reg(0x60000000, 0x60000000 + 8 * M, RegionKind::heap),  // staged
                             reg(0x70000000, 0x70000000 + 8 * M, RegionKind::file_private),
                             reg(0x80000000, 0x80000000 + 3 * M)};  // one window, 3/4 filled
  std::vector<image::PageRun> runs = {
      {0x40000000 + 2 * M, (M + M / 4) / kPage, 0}, // [2M, 3.25M) + [3.5M, 3.75M): 3/4 of [2M, 4M)
      {0x40000000 + 3 * M + M / 2, M / 4 / kPage, 0},
      {0x50000000, M / kPage, 0},                  // half a window only
      {0x50000000 + 3 * M, M / kPage, 0},          // halves of two windows
      {0x60000000, 8 * M / kPage, 0},
      {0x70000000, 8 * M / kPage, 0},
      {0x80000000 + M / 2, 3 * M / 2 / kPage, 0}}; // [0.5M, 2M)
  auto w = plan_page_writes(runs, img, {}, kPage);
  ASSERT_TRUE(w) << w.error().message();
  auto huge = plan_huge_regions(img, *w, {false, false, true, false, false});
  EXPECT_EQ(huge, (std::vector<size_t>{0, 4}));
  // One page less than 3/4 in region 4's window removes it; region 2 in place is dense.
  runs.back().addr += kPage;
  runs.back().npages -= 1;
  w = plan_page_writes(runs, img, {}, kPage);
  ASSERT_TRUE(w);
  EXPECT_EQ(plan_huge_regions(img, *w, {}), (std::vector<size_t>{0, 2}));
}

}  // namespace
}  // namespace ferry::restore
