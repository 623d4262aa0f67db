// SPDX-License-Identifier: Apache-2.0
// maps/smaps parsers on the fixtures in testdata/ and on this test's own live maps.
#include "proc/maps.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "ferry/common/fs.hpp"

namespace ferry::proc {
namespace {

std::string fixture(const char* name) {
  auto t = fs::read_file(std::string(FERRY_PROC_TESTDATA) + "/" + name);
  EXPECT_TRUE(t) << name;
  return t ? *t : std::string();
}

TEST(Maps, ParsesFixture) {
  auto maps = parse_maps(fixture("maps.txt"));
  ASSERT_TRUE(maps) << maps.error().message();
  ASSERT_EQ(maps->size(), 18u);
  const auto& text = (*maps)[1];
  EXPECT_EQ(text.start, 0x5575e1958000u);
  EXPECT_EQ(text.end, 0x5575e195d000u);
  EXPECT_EQ(text.prot(), unsigned(PROT_READ | PROT_EXEC));
  EXPECT_FALSE(text.shared);
  EXPECT_EQ(text.pgoff, 0x2000u);
  EXPECT_EQ(text.dev_major, 0xfeu);
  EXPECT_EQ(text.dev_minor, 0u);
  EXPECT_EQ(text.ino, 248056u);
  EXPECT_EQ(text.path, "/usr/bin/sleep");
  EXPECT_EQ((*maps)[3].special, Special::heap);
  EXPECT_EQ((*maps)[4].path, "/tmp/dir with spaces/data file");
  EXPECT_TRUE((*maps)[5].anonymous());
  EXPECT_TRUE((*maps)[7].is_shared_anon());
  EXPECT_TRUE((*maps)[7].deleted);
  EXPECT_TRUE((*maps)[8].is_memfd());
  EXPECT_EQ((*maps)[8].path, "/memfd:ring");
  EXPECT_EQ((*maps)[8].pgoff, 0x1000u);
  EXPECT_TRUE((*maps)[9].shared);
  EXPECT_EQ((*maps)[9].dev_minor, 0x19u);
  EXPECT_TRUE((*maps)[10].deleted);
  EXPECT_EQ((*maps)[10].path, "/tmp/gone.bin");
  EXPECT_EQ((*maps)[12].prot(), 0u);
  EXPECT_EQ((*maps)[13].special, Special::vvar);
  EXPECT_EQ((*maps)[14].special, Special::vvar_vclock);
  EXPECT_EQ((*maps)[15].special, Special::vdso);
  EXPECT_EQ((*maps)[16].special, Special::stack);
  EXPECT_EQ((*maps)[17].special, Special::vsyscall);
  EXPECT_EQ((*maps)[17].end, 0xffffffffff601000u);
}

TEST(Maps, RejectsGarbage) {
  EXPECT_FALSE(parse_maps("zzzz-1000 r--p 0 00:00 0\n"));
  EXPECT_FALSE(parse_maps("1000-2000 r--p 00000000 fe00 0\n"));
  EXPECT_FALSE(parse_maps("2000-1000 r--p 00000000 fe:00 0\n"));
}

TEST(Maps, LiveMapsContainOurOwnMapping) {
  long page = ::sysconf(_SC_PAGESIZE);
  void* p = ::mmap(nullptr, 3 * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto maps = read_maps(::getpid());
  ASSERT_TRUE(maps);
  bool found = false, vdso = false;
  for (const auto& m : *maps) {
    if (m.start <= reinterpret_cast<uint64_t>(p) && reinterpret_cast<uint64_t>(p) < m.end) found = true;
    vdso |= m.special == Special::vdso;
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE(vdso);
  ::munmap(p, 3 * page);
}

TEST(Smaps, ParsesAnonymousAndSwap) {
  auto s = parse_smaps(fixture("smaps.txt"));
  ASSERT_TRUE(s) << s.error().message();
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[0].start, 0x5575e1960000u);
  EXPECT_EQ((*s)[0].anonymous, 4096u);
  EXPECT_EQ((*s)[1].anonymous, 8192u);
  EXPECT_EQ((*s)[1].swap, 12288u);
  EXPECT_EQ((*s)[2].anonymous, 0u);
  EXPECT_EQ((*s)[2].rss, 4096u);
  auto live = read_smaps(::getpid());
  ASSERT_TRUE(live) << live.error().message();
  EXPECT_FALSE(live->empty());
}

}  // namespace
}  // namespace ferry::proc
