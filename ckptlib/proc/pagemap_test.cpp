// SPDX-License-Identifier: Apache-2.0
// pagemap run coalescing on synthetic entries and on this test's own memory.
#include "proc/pagemap.hpp"

#include "proc/pagemap_scan.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

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

// The PAGEMAP_SCAN path and the entry-reading path agree, per policy, on a private file
// mapping with one page read (a page-cache page) and one written (copy-on-write, anonymous).
TEST(Pagemap, ScanAndEntriesAgreeOnFilePages) {
  const long page = ::sysconf(_SC_PAGESIZE);
  char path[] = "/tmp/ferry-pagemap-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  std::vector<char> bytes(4 * page, 'x');
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  auto* p = static_cast<char*>(::mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
  ASSERT_NE(p, MAP_FAILED);
  volatile char sink = p[0];  // page 0: the file's page, mapped
  (void)sink;
  p[2 * page] = 'y';  // page 2: copied on write
  auto pm = Pagemap::open(::getpid());
  ASSERT_TRUE(pm) << pm.error().message();
  const auto base = reinterpret_cast<uint64_t>(p), end = base + 4 * page;
  for (SavePolicy policy : {SavePolicy::anon_only, SavePolicy::present_or_swapped}) {
    std::vector<uint64_t> entries(4);
    ASSERT_TRUE(pm->read(base, page, entries));
    auto from_entries = runs_to_save(entries, base, page, policy);
    auto scanned = scan_save_runs(pm->fd(), base, end, page, policy);
    ASSERT_TRUE(scanned) << scanned.error().message();
    if (!*scanned) GTEST_SKIP() << "no PAGEMAP_SCAN on this kernel";
    EXPECT_EQ(**scanned, from_entries);
  }
  std::vector<uint64_t> entries(4);
  ASSERT_TRUE(pm->read(base, page, entries));
  EXPECT_EQ(runs_to_save(entries, base, page, SavePolicy::anon_only), (std::vector<PageRange>{{base + 2 * page, 1}}));
  ::munmap(p, 4 * page);
  ::close(fd);
}

}  // namespace
}  // namespace ferry::proc
