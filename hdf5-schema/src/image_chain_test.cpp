// SPDX-License-Identifier: Apache-2.0
// open_image_chain(): an incremental image reads its own pages and its bases' pages as one
// image; a base that is missing, replaced by another image, or damaged where a referenced page
// lies is refused with image_corrupt naming its generation; a base's other chunks are not read.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "ferry/image/chain.hpp"
#include "ferry/image/reader.hpp"
#include "ferry/image/writer.hpp"
#include "test_fixture.hpp"

namespace ferry::image {
namespace {

using testing::fill_pages;
using testing::kPage;

constexpr uint64_t kBase = 0x7f0000000000;

struct ChainDir {
  std::string root;
  ChainDir() {
    root = "/tmp/ferry-chain-test-" + std::to_string(::getpid());
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root + "/gen-000001");
    std::filesystem::create_directories(root + "/gen-000002");
  }
  ~ChainDir() { std::filesystem::remove_all(root); }
  std::string image(int gen) const { return root + "/gen-00000" + std::to_string(gen) + "/rank-0.h5"; }
};

ProcessImage skeleton(uint64_t generation) {
  ProcessImage im;
  im.header.abi = "x86_64";
  im.header.page_size = kPage;
  im.header.job = "7";
  im.header.generation = generation;
  im.regions = {{kBase, kBase + (16u << 20), 3, 2, RegionKind::anon_private, 0, -1, -1, ""}};
  return im;
}

// Generation 1: 12 MiB of pages from kBase (3 chunks). Generation 2: 1 MiB of its own at
// +4 MiB, the rest referred to generation 1.
Result<void> write_chain(const ChainDir& d, uint64_t seed_shift = 0) {
  {
    FERRY_TRY(w, ImageWriter::create(d.image(1)));
    std::vector<std::byte> buf(12u << 20);
    fill_pages(kBase + seed_shift, buf);
    FERRY_TRY_VOID(w->append_pages(kBase, buf));
    FERRY_TRY_VOID(w->finish(skeleton(1)));
  }
  FERRY_TRY(r1, ImageReader::open(d.image(1)));
  ProcessImage top = skeleton(2);
  top.bases = {{1, "../gen-000001/rank-0.h5", header_identity(r1->image().header)}};
  top.page_refs = {{kBase, (4u << 20) / kPage, 0}, {kBase + (5u << 20), (7u << 20) / kPage, 0}};
  FERRY_TRY(w, ImageWriter::create(d.image(2)));
  std::vector<std::byte> own(1u << 20);
  fill_pages(kBase + (4u << 20) + 1, own);  // differs from generation 1's bytes there
  FERRY_TRY_VOID(w->append_pages(kBase + (4u << 20), own));
  return w->finish(top);
}

TEST(ImageChain, ReadsOwnAndReferredPagesAsOneImage) {
  ChainDir d;
  ASSERT_TRUE(write_chain(d));
  std::vector<ChainLink> links;
  auto chain = open_image_chain(d.image(2), &links);
  ASSERT_TRUE(chain) << chain.error().message();
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].generation, 1u);
  EXPECT_EQ(links[0].referenced_bytes, 11u << 20);
  const ProcessImage& im = (*chain)->image();
  ASSERT_EQ(im.page_runs.size(), 3u);  // own run + two references, by address
  EXPECT_EQ(im.page_runs[1].offset, 0u);
  EXPECT_EQ(im.page_runs[0].offset, kRefOffset);
  std::vector<std::byte> want(12u << 20), got(1u << 20);
  fill_pages(kBase, want);
  std::vector<std::byte> own(1u << 20);
  fill_pages(kBase + (4u << 20) + 1, own);
  for (uint64_t off = 0; off < (12u << 20); off += 1u << 20) {
    ASSERT_TRUE((*chain)->read_pages(kBase + off, got)) << off;
    const auto& src = off == (4u << 20) ? own : std::vector<std::byte>(want.begin() + off, want.begin() + off + (1u << 20));
    EXPECT_TRUE(got == src) << "MiB " << (off >> 20);
  }
  EXPECT_TRUE((*chain)->verify_all());
  EXPECT_TRUE((*chain)->verify_unread());
}

TEST(ImageChain, RefusesAMissingOrReplacedBaseNamingIt) {
  ChainDir d;
  ASSERT_TRUE(write_chain(d));
  std::filesystem::rename(d.image(1), d.image(1) + ".away");
  auto missing = open_image_chain(d.image(2));
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().is(errc::image_corrupt));
  EXPECT_NE(missing.error().message().find("generation 1 "), std::string::npos) << missing.error().message();
  // Another image of generation 1 in its place (same job, other time): not the one built on.
  std::filesystem::rename(d.image(1) + ".away", d.image(1));
  {
    auto w = ImageWriter::create(d.image(1) + ".other");
    ASSERT_TRUE(w);
    ProcessImage other = skeleton(1);
    other.header.time_ns = 99;
    std::vector<std::byte> buf(12u << 20);
    fill_pages(kBase, buf);
    ASSERT_TRUE((*w)->append_pages(kBase, buf));
    ASSERT_TRUE((*w)->finish(other));
  }
  std::filesystem::rename(d.image(1) + ".other", d.image(1));
  auto replaced = open_image_chain(d.image(2));
  ASSERT_FALSE(replaced);
  EXPECT_TRUE(replaced.error().is(errc::image_corrupt));
  EXPECT_NE(replaced.error().message().find("not the image it was built on"), std::string::npos);
}

TEST(ImageChain, DamageInAReferredChunkOfTheBaseIsFound) {
  ChainDir d;
  ASSERT_TRUE(write_chain(d));
  // Flip bytes of generation 1's pages near 9 MiB (chunk 2, referred to).
  std::vector<std::byte> probe(64);
  fill_pages(kBase, probe);
  {
    std::FILE* f = std::fopen(d.image(1).c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::vector<char> data(static_cast<size_t>(std::filesystem::file_size(d.image(1))));
    ASSERT_EQ(std::fread(data.data(), 1, data.size(), f), data.size());
    std::vector<std::byte> at9(64);
    std::vector<std::byte> all(12u << 20);
    fill_pages(kBase, all);
    std::copy(all.begin() + (9u << 20), all.begin() + (9u << 20) + 64, at9.begin());
    auto it = std::search(data.begin(), data.end(), reinterpret_cast<const char*>(at9.data()),
                          reinterpret_cast<const char*>(at9.data()) + 64);
    ASSERT_NE(it, data.end());
    std::fseek(f, it - data.begin(), SEEK_SET);
    const char junk[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    std::fwrite(junk, 1, sizeof junk, f);
    std::fclose(f);
  }
  auto chain = open_image_chain(d.image(2));
  ASSERT_TRUE(chain) << chain.error().message();  // metadata intact: found when read
  auto v = (*chain)->verify_all();
  ASSERT_FALSE(v);
  EXPECT_TRUE(v.error().is(errc::image_corrupt));
  EXPECT_NE(v.error().message().find("generation 1 "), std::string::npos) << v.error().message();
}

}  // namespace
}  // namespace ferry::image
