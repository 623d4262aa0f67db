// SPDX-License-Identifier: Apache-2.0
// scan_written() on this test's own memory, registered with a WP_ASYNC userfaultfd: exactly the
// written pages are reported, re-protection makes the next scan empty, more ranges than one
// ioctl's vector are collected, a zapped-then-read page counts as written, and an unregistered
// range is refused.
#include "proc/pagemap_scan.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "ferry/common/unique_fd.hpp"
#include "proc/uffd_wp_uapi.hpp"

namespace ferry::proc {
namespace {

constexpr uint64_t kPage = 4096;

struct Tracked {
  char* mem = nullptr;
  size_t pages = 0;
  UniqueFd uffd, pagemap;

  explicit Tracked(size_t n) : pages(n) {
    mem = static_cast<char*>(::mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    for (size_t i = 0; i < n; i += 2) mem[i * kPage] = 1;  // half populated, half never touched
    uffd = UniqueFd(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY)));
    pagemap = UniqueFd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  }
  ~Tracked() { ::munmap(mem, pages * kPage); }
  uint64_t at(size_t page) const { return reinterpret_cast<uint64_t>(mem) + page * kPage; }
  bool arm() {
    uffdio_api api{};
    api.api = UFFD_API;
    api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
    if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0) return false;
    uffdio_register reg{};
    reg.range = {at(0), pages * kPage};
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    if (::ioctl(uffd.get(), UFFDIO_REGISTER, &reg) != 0) return false;
    uffdio_writeprotect wp{};
    wp.range = {at(0), pages * kPage};
    wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
    return ::ioctl(uffd.get(), UFFDIO_WRITEPROTECT, &wp) == 0;
  }
  Result<std::vector<AddrRange>> scan(bool rearm = true) {
    return scan_written(pagemap.get(), at(0), at(pages), rearm);
  }
};

TEST(PagemapScan, ReportsExactlyTheWrittenPagesAndReprotects) {
  Tracked t(64);
  ASSERT_TRUE(t.uffd && t.pagemap);
  ASSERT_TRUE(t.arm());
  auto none = t.scan();
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_TRUE(none->empty());
  t.mem[3 * kPage] = 2;
  t.mem[4 * kPage + 100] = 2;
  t.mem[10 * kPage] = 2;
  t.mem[41 * kPage] = 2;  // never touched before: WP_UNPOPULATED tracks it too
  auto r = t.scan(/*rearm=*/false);
  ASSERT_TRUE(r) << r.error().message();
  std::vector<AddrRange> want = {{t.at(3), t.at(5)}, {t.at(10), t.at(11)}, {t.at(41), t.at(42)}};
  EXPECT_EQ(*r, want);
  auto again = t.scan();  // without rearm the pages are still reported, and now re-protected
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, want);
  auto empty = t.scan();
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(PagemapScan, ZappedThenReadPageCountsAsWritten) {
  Tracked t(16);
  ASSERT_TRUE(t.arm());
  ASSERT_EQ(::madvise(t.mem + 2 * kPage, kPage, MADV_DONTNEED), 0);
  volatile char c = t.mem[2 * kPage];  // maps the zero page: the content changed to zeros
  (void)c;
  auto r = t.scan();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (std::vector<AddrRange>{{t.at(2), t.at(3)}}));
}

TEST(PagemapScan, CollectsMoreRangesThanOneCallHolds) {
  Tracked t(4096);
  ASSERT_TRUE(t.arm());
  for (size_t i = 0; i < t.pages; i += 2) t.mem[i * kPage] = 3;  // 2048 separate ranges
  auto r = t.scan();
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->size(), 2048u);
  EXPECT_EQ(r->front(), (AddrRange{t.at(0), t.at(1)}));
  EXPECT_EQ(r->back(), (AddrRange{t.at(4094), t.at(4095)}));
}

TEST(PagemapScan, RefusesARangeThatIsNotRegistered) {
  Tracked t(8);
  ASSERT_TRUE(t.pagemap);
  auto r = t.scan();
  ASSERT_FALSE(r);
}

}  // namespace
}  // namespace ferry::proc
