// SPDX-License-Identifier: Apache-2.0
// pagemap run coalescing on synthetic entries and on this test's own memory.
#include "proc/pagemap.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace ferry::proc {
namespace {

constexpr uint64_t P = kPmPresent, S = kPmSwapped, F = kPmFileOrSharedAnon;

TEST(Pagemap, PoliciesSelectTheRightPages) {
  std::vector<uint64_t> e = {P, P | F, 0, S, P, 0, P | F};
  EXPECT_EQ(runs_to_save(e, 0x10000, 4096, SavePolicy::present_or_swapped),
            (std::vector<PageRange>{{0x10000, 2}, {0x13000, 2}, {0x16000, 1}}));
  EXPECT_EQ(runs_to_save(e, 0x10000, 4096, SavePolicy::anon_only),
            (std::vector<PageRange>{{0x10000, 1}, {0x13000, 2}}));
  EXPECT_TRUE(runs_to_save(std::vector<uint64_t>(5, 0), 0, 4096, SavePolicy::present).empty());
}

TEST(Pagemap, LiveScanFindsTouchedPagesOnly) {
  long page = ::sysconf(_SC_PAGESIZE);
  auto* p = static_cast<char*>(::mmap(nullptr, 8 * page, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  p[1 * page] = 1;
  p[2 * page] = 1;
  p[6 * page] = 1;
  auto pm = Pagemap::open(::getpid());
  ASSERT_TRUE(pm) << pm.error().message();
  auto base = reinterpret_cast<uint64_t>(p);
  auto runs = scan_runs(*pm, base, base + 8 * page, page, SavePolicy::present_or_swapped);
  ASSERT_TRUE(runs) << runs.error().message();
  EXPECT_EQ(*runs, (std::vector<PageRange>{{base + page, 2}, {base + 6 * page, 1}}));
  ::munmap(p, 8 * page);
}

}  // namespace
}  // namespace ferry::proc
