// SPDX-License-Identifier: Apache-2.0
// Schema 1.5 chunk streams: the pipeline [shuffle (8), zstd] and the three codings a chunk can
// have (raw mask 3, zstd mask 1, shuffle+zstd mask 0). Byte shuffle against a plain reference,
// the encoder's choice per kind of data, round trips, mixed codings in one image, damage found
// by the checksum of the logical bytes, stock h5dump reading the values, and a 1.4 image
// (pipeline [zstd]) written by the previous writer still reading.
#include <fcntl.h>
#include <hdf5.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "chunk_codec.hpp"
#include "chunk_store.hpp"
#include "ferry/image/reader.hpp"
#include "ferry/image/writer.hpp"
#include "test_fixture.hpp"

namespace ferry::image {
namespace {

using testing::fill_pages;
using testing::flip_byte;
using testing::kPage;
using testing::TempFile;

constexpr uint64_t kAddr = 0x7f0000000000;

// Reads of several whole chunks go through the parallel decode (fetch_many) in this test
// binary whatever the CPU count (the default is none below 4 CPUs). Set before main().
[[maybe_unused]] const bool kParallelDecode = ::setenv("FERRY_DECODERS", "1", 0) == 0;

// bench/memhog.c's "hpc" array: smooth doubles with full 52-bit mantissas.
void smooth_doubles(std::span<std::byte> out, uint64_t first) {
  for (size_t i = 0; i + 8 <= out.size(); i += 8) {
    double x = static_cast<double>(first + i / 8) * 1e-6;
    double d = 300.0 + 25.0 * std::sin(x) + 3.0 * std::cos(7.0 * x) + 0.5 * std::sin(61.0 * x) + 1e-3 * x;
    std::memcpy(out.data() + i, &d, 8);
  }
}

// Text-like bytes: compress well without shuffling.
void text(std::span<std::byte> out) {
  const char t[] = "restart from generation 12 of job j-3f2a; rank 0 reads its pages. ";
  for (size_t i = 0; i < out.size(); ++i) out[i] = std::byte(t[i % (sizeof t - 1)] + (i / 4096) % 5);
}

std::vector<std::byte> reference_shuffle(std::span<const std::byte> in, size_t elem) {
  std::vector<std::byte> out(in.size());
  size_t n = in.size() / elem;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < elem; ++j) out[j * n + i] = in[i * elem + j];
  for (size_t k = n * elem; k < in.size(); ++k) out[k] = in[k];
  return out;
}

ProcessImage minimal_image() {
  ProcessImage im;
  im.header.abi = "x86_64";
  im.header.page_size = static_cast<uint32_t>(kPage);
  return im;
}

void write_stream(const std::string& path, std::span<const std::byte> bytes) {
  auto w = ImageWriter::create(path);
  ASSERT_TRUE(w) << w.error().message();
  ASSERT_TRUE((*w)->append_pages(kAddr, bytes));
  auto r = (*w)->finish(minimal_image());
  ASSERT_TRUE(r) << r.error().message();
}

// Filter masks of every chunk of /memory/pages, in chunk order.
std::vector<unsigned> chunk_masks(const std::string& path) {
  std::vector<unsigned> masks;
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "/memory/pages", H5P_DEFAULT);
  hid_t s = H5Dget_space(d);
  hsize_t n = 0;
  H5Dget_num_chunks(d, s, &n);
  masks.resize(n);
  for (hsize_t i = 0; i < n; ++i) {
    hsize_t offset[1] = {0}, size = 0;
    unsigned mask = 0;
    haddr_t addr = 0;
    H5Dget_chunk_info(d, s, i, offset, &mask, &addr, &size);
    masks.at(offset[0] / kChunkBytes) = mask;
  }
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  return masks;
}

// Replaces chunk `index` of /memory/pages with `logical` (one whole chunk) stored as `coding`.
void store_chunk_as(const std::string& path, uint64_t index, ChunkCoding coding, std::span<const std::byte> logical) {
  ASSERT_EQ(logical.size(), kChunkBytes);
  register_filters();
  HugeBuffer packed;
  std::span<const std::byte> stored = logical;
  if (coding != ChunkCoding::raw) {
    size_t n = encode_as(coding, logical, packed);
    ASSERT_GT(n, 0u);
    stored = {packed.data(), n};
  }
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  hid_t d = H5Dopen2(f, "/memory/pages", H5P_DEFAULT);
  hsize_t offset[1] = {index * kChunkBytes};
  EXPECT_GE(H5Dwrite_chunk(d, H5P_DEFAULT, filter_mask(coding), offset, stored.size(), stored.data()), 0);
  H5Dclose(d);
  H5Fclose(f);
}

// File address of chunk `index` of /memory/pages.
uint64_t chunk_file_address(const std::string& path, uint64_t index) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "/memory/pages", H5P_DEFAULT);
  hsize_t offset[1] = {index * kChunkBytes}, size = 0;
  unsigned mask = 0;
  haddr_t addr = HADDR_UNDEF;
  EXPECT_GE(H5Dget_chunk_info_by_coord(d, offset, &mask, &addr, &size), 0);
  H5Dclose(d);
  H5Fclose(f);
  return addr;
}


// The restore's destination-ordered reads (read_stored_v, then finish_stored_reads): pieces in
// two calls land wherever the caller puts them, and every chunk the stream passes through is
// checked whole, bytes no piece asked for included: chunk 0 when the stream leaves it, chunk 2
// (the image's short last one) at the finish. Chunks 0 and 2 are raw (streamed from the file),
// chunk 1 zstd (loaded whole, copied from).
TEST(ImageScatteredReads, PiecesLandInPlaceAndEveryChunkPassedIsChecked) {
  TempFile tmp("scatter");
  const uint64_t total = 2 * kChunkBytes + kChunkBytes / 2;
  std::vector<std::byte> want(total);
  fill_pages(kAddr, want);
  text(std::span(want).subspan(kChunkBytes, kChunkBytes));
  write_stream(tmp.path, want);
  store_chunk_as(tmp.path, 1, ChunkCoding::zstd, std::span(want).subspan(kChunkBytes, kChunkBytes));
  ASSERT_EQ(chunk_masks(tmp.path)[1], kMaskZstd);
  struct Piece {
    uint64_t offset, len;  // in the pages stream (one page run at kAddr, offset 0)
  };
  const std::vector<std::vector<Piece>> calls{
      {{kPage, 2 * kPage}, {kChunkBytes - 3 * kPage, 8 * kPage}},       // chunk 0, then 0 and 1
      {{kChunkBytes + 9 * kPage, kPage}, {2 * kChunkBytes + 5 * kPage, 3 * kPage}}};  // 1, then 2
  std::vector<std::byte> out(total);
  auto read_all = [&](ImageSource& src) -> Result<void> {
    uint64_t at = out.size();
    for (const auto& call : calls) {
      std::vector<StoredRead> rs;
      for (const auto& p : call) {  // placed back to front in `out`
        at -= p.len;
        rs.push_back({0, p.offset, kAddr + p.offset, {out.data() + at, static_cast<size_t>(p.len)}});
      }
      FERRY_TRY_VOID(src.read_stored_v(rs));
    }
    return src.finish_stored_reads();
  };
  {
    auto reader = ImageReader::open(tmp.path);
    ASSERT_TRUE(reader) << reader.error().message();
    ASSERT_TRUE((*reader)->reads_scattered());
    auto r = read_all(**reader);
    ASSERT_TRUE(r) << r.error().message();
    uint64_t at = out.size();
    for (const auto& call : calls)
      for (const auto& p : call) {
        at -= p.len;
        EXPECT_TRUE(std::equal(out.begin() + static_cast<long>(at), out.begin() + static_cast<long>(at + p.len),
                               want.begin() + static_cast<long>(p.offset)))
            << "piece at " << p.offset;
      }
  }
  // A flipped byte no piece asks for, in chunk 0 (found when the stream leaves it) and in
  // chunk 2 after the last piece (found at the finish).
  for (uint64_t chunk : {0u, 2u}) {
    TempFile bad("scatter-bad");
    std::filesystem::copy_file(tmp.path, bad.path, std::filesystem::copy_options::overwrite_existing);
    flip_byte(bad.path, chunk_file_address(bad.path, chunk) + 20 * kPage + 5);
    auto reader = ImageReader::open(bad.path);
    ASSERT_TRUE(reader) << reader.error().message();
    auto r = read_all(**reader);
    ASSERT_FALSE(r) << "chunk " << chunk;
    EXPECT_TRUE(r.error().is(errc::image_corrupt));
    EXPECT_NE(r.error().message().find("checksum mismatch in /memory/pages chunk " + std::to_string(chunk)),
              std::string::npos)
        << r.error().message();
  }
}

TEST(ByteShuffle, MatchesHdf5AlgorithmAndInverts) {
  std::vector<std::byte> in(3 * kChunkBytes / 64 + 13);  // blocks of 16 words, a word tail, a byte tail
  fill_pages(1, in);
  for (size_t i = in.size() / 8 * 8; i < in.size(); ++i) in[i] = std::byte(i * 7);
  for (size_t elem : {8u, 4u, 3u}) {
    for (size_t len : {in.size(), size_t{128}, size_t{127}, size_t{8 * 17 + 5}, size_t{5}}) {
      std::span<const std::byte> src{in.data(), len};
      std::vector<std::byte> shuffled(len), back(len);
      byte_shuffle(src, shuffled, elem);
      EXPECT_TRUE(shuffled == reference_shuffle(src, elem)) << "elem " << elem << " len " << len;
      byte_unshuffle(shuffled, back, elem);
      EXPECT_TRUE(std::equal(back.begin(), back.end(), src.begin())) << "elem " << elem << " len " << len;
    }
  }
}

TEST(ChunkEncoding, EachKindOfDataGetsItsCoding) {
  std::vector<std::byte> doubles(kChunkBytes), words(kChunkBytes), noise(kChunkBytes);
  HugeBuffer packed;
  smooth_doubles(doubles, 0);
  text(words);
  fill_pages(3, noise);
  // The choice rests on the thread's CPU clock, and on a loaded VM one sample can be slow
  // (steal time counts as the thread's): a kind of data gets three tries to show its coding
  // (CI once saw text stored shuffled because plain zstd's sample timed too slow).
  auto encode = [&](std::span<const std::byte> in, ChunkCoding want) {
    Encoded got;
    for (int i = 0; i < 3 && got.coding != want; ++i) got = encode_chunk(in, packed);
    return got;
  };
  Encoded e = encode(doubles, ChunkCoding::shuffle_zstd);
  EXPECT_EQ(e.coding, ChunkCoding::shuffle_zstd);
  EXPECT_LT(e.size, kChunkBytes * 6 / 10);  // ~2.3x
  std::vector<std::byte> back(kChunkBytes);
  HugeBuffer scratch;
  ASSERT_TRUE(decode_chunk(e.coding, {packed.data(), e.size}, back, scratch));
  EXPECT_TRUE(back == doubles);
  e = encode(words, ChunkCoding::zstd);
  EXPECT_EQ(e.coding, ChunkCoding::zstd);
  EXPECT_EQ(encode_chunk(noise, packed).coding, ChunkCoding::raw);
  // Without shuffling (a 1.3-1.4 pipeline) the doubles shrink by 16 % at best.
  e = encode_chunk(doubles, packed, kMinSavedRate, false);
  EXPECT_NE(e.coding, ChunkCoding::shuffle_zstd);
  if (e.coding == ChunkCoding::zstd) {
    EXPECT_GT(e.size, kChunkBytes * 8 / 10);
  }
  // A writer faster than any encoder: everything raw.
  EXPECT_EQ(encode_chunk(doubles, packed, 1e15).coding, ChunkCoding::raw);
}

TEST(ImageShuffle, SmoothDoublesRoundTripShuffled) {
  TempFile tmp("shuffle-doubles");
  std::vector<std::byte> bytes(3 * kChunkBytes);
  smooth_doubles(bytes, 12345);
  // More encoders than chunks: the writer never takes a chunk raw because every encoder is
  // busy, and the first chunk an encoder takes is judged before anything was written (against
  // kMinSavedRate only): shuffled. Later ones may be raw (the writer's measured rate, a page
  // cache copy, can beat the encoder), never plain zstd.
  const char* old = std::getenv("FERRY_ENCODERS");
  std::string saved = old ? old : "";
  ::setenv("FERRY_ENCODERS", "8", 1);
  // The sample's speed is timed on the thread CPU clock, which counts a loaded VM's steal
  // time: three tries for a shuffled chunk (see ChunkEncoding.EachKindOfDataGetsItsCoding).
  std::vector<unsigned> masks;
  for (int i = 0; i < 3 && std::count(masks.begin(), masks.end(), kMaskShuffleZstd) == 0; ++i) {
    write_stream(tmp.path, bytes);
    masks = chunk_masks(tmp.path);
  }
  if (old) ::setenv("FERRY_ENCODERS", saved.c_str(), 1); else ::unsetenv("FERRY_ENCODERS");
  ASSERT_EQ(masks.size(), 3u);
  EXPECT_NE(std::count(masks.begin(), masks.end(), kMaskShuffleZstd), 0);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_TRUE(masks[i] == kMaskShuffleZstd || masks[i] == kMaskRaw) << "chunk " << i << ": " << masks[i];
  auto reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader) << reader.error().message();
  EXPECT_EQ((*reader)->image().header.schema_version, "1.5.0");
  ASSERT_TRUE((*reader)->verify_all());
  std::vector<std::byte> back(bytes.size());
  ASSERT_TRUE((*reader)->read_pages(kAddr, back));  // whole chunks straight into the buffer
  EXPECT_TRUE(back == bytes);
  std::vector<std::byte> piece(3 * kPage);  // a read across chunks 0 and 1, through the cache
  ASSERT_TRUE((*reader)->read_pages(kAddr + kChunkBytes - kPage, piece));
  EXPECT_TRUE(std::equal(piece.begin(), piece.end(), bytes.begin() + kChunkBytes - kPage));
}

// One image holding chunks of all three codings (made so by rewriting chunks), read back.
TEST(ImageShuffle, MixedCodingsInOneImageRead) {
  TempFile tmp("shuffle-mixed");
  std::vector<std::byte> bytes(4 * kChunkBytes);
  std::span<std::byte> all(bytes);
  fill_pages(9, bytes);  // chunk 2 stays noise
  smooth_doubles(all.subspan(0, kChunkBytes), 0);
  text(all.subspan(kChunkBytes, kChunkBytes));
  smooth_doubles(all.subspan(3 * kChunkBytes, kChunkBytes), 777);
  write_stream(tmp.path, bytes);
  store_chunk_as(tmp.path, 0, ChunkCoding::shuffle_zstd, all.subspan(0, kChunkBytes));
  store_chunk_as(tmp.path, 1, ChunkCoding::zstd, all.subspan(kChunkBytes, kChunkBytes));
  store_chunk_as(tmp.path, 2, ChunkCoding::raw, all.subspan(2 * kChunkBytes, kChunkBytes));
  store_chunk_as(tmp.path, 3, ChunkCoding::zstd, all.subspan(3 * kChunkBytes, kChunkBytes));
  EXPECT_EQ(chunk_masks(tmp.path), (std::vector<unsigned>{kMaskShuffleZstd, kMaskZstd, kMaskRaw, kMaskZstd}));
  auto reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader) << reader.error().message();
  ASSERT_TRUE((*reader)->verify_all());
  std::vector<std::byte> back(bytes.size());
  ASSERT_TRUE((*reader)->read_pages(kAddr, back));
  EXPECT_TRUE(back == bytes);
}

TEST(ImageShuffle, DamageInAShuffledChunkIsFound) {
  TempFile tmp("shuffle-damage");
  std::vector<std::byte> bytes(2 * kChunkBytes);
  smooth_doubles(bytes, 0);
  write_stream(tmp.path, bytes);
  // Chunk 1 stored shuffled but from bytes with one flipped bit: it decodes, and only the
  // checksum of the logical bytes can tell.
  std::vector<std::byte> bad(bytes.begin() + kChunkBytes, bytes.end());
  bad[12345] ^= std::byte{0x10};
  store_chunk_as(tmp.path, 1, ChunkCoding::shuffle_zstd, bad);
  ASSERT_EQ(chunk_masks(tmp.path).at(1), kMaskShuffleZstd);
  {
    auto reader = ImageReader::open(tmp.path);
    ASSERT_TRUE(reader) << reader.error().message();
    auto r = (*reader)->verify_all();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), errc::image_corrupt);
    EXPECT_NE(r.error().message().find("checksum mismatch in /memory/pages chunk 1"), std::string::npos)
        << r.error().message();
    std::vector<std::byte> back(kChunkBytes);
    EXPECT_FALSE((*reader)->read_pages(kAddr + kChunkBytes, back));
    EXPECT_TRUE((*reader)->read_pages(kAddr, back));  // chunk 0 is fine
    // Both chunks in one read (decoded in parallel): the damage is still reported.
    std::vector<std::byte> two(2 * kChunkBytes);
    auto r2 = (*reader)->read_pages(kAddr, two);
    ASSERT_FALSE(r2);
    EXPECT_NE(r2.error().message().find("checksum mismatch in /memory/pages chunk 1"), std::string::npos)
        << r2.error().message();
  }
  // A flipped byte in the stored frame itself: undecodable or a checksum mismatch, never read.
  store_chunk_as(tmp.path, 1, ChunkCoding::shuffle_zstd, {bytes.data() + kChunkBytes, kChunkBytes});
  {
    auto reader = ImageReader::open(tmp.path);
    ASSERT_TRUE(reader);
    ASSERT_TRUE((*reader)->verify_all());
  }
  hid_t f = H5Fopen(tmp.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "/memory/pages", H5P_DEFAULT);
  hsize_t coord[1] = {kChunkBytes}, size = 0;
  unsigned mask = 0;
  haddr_t addr = 0;
  ASSERT_GE(H5Dget_chunk_info_by_coord(d, coord, &mask, &addr, &size), 0);
  H5Dclose(d);
  H5Fclose(f);
  {
    std::fstream io(tmp.path, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(static_cast<std::streamoff>(addr + size / 2));
    char c = 0;
    io.get(c);
    io.seekp(static_cast<std::streamoff>(addr + size / 2));
    io.put(static_cast<char>(c ^ 0x5a));
  }
  auto reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader);
  auto r = (*reader)->verify_all();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), errc::image_corrupt);
  EXPECT_NE(r.error().message().find("/memory/pages chunk 1"), std::string::npos) << r.error().message();
}

// A stock h5dump, with a zstd plugin of the community format (test_plugin/, built here: Debian
// packages none) and HDF5's built-in shuffle, dumps the exact bytes of every coding.
TEST(ImageShuffle, StockH5dumpReadsShuffledChunks) {
  if (::access("/usr/bin/h5dump", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/h5dump";
  TempFile tmp("shuffle-h5dump");
  std::vector<std::byte> bytes(3 * kChunkBytes + 3 * kPage);
  std::span<std::byte> all(bytes);
  fill_pages(5, bytes);
  smooth_doubles(all.subspan(0, kChunkBytes), 0);
  text(all.subspan(kChunkBytes, kChunkBytes));
  write_stream(tmp.path, bytes);
  store_chunk_as(tmp.path, 0, ChunkCoding::shuffle_zstd, all.subspan(0, kChunkBytes));
  store_chunk_as(tmp.path, 1, ChunkCoding::zstd, all.subspan(kChunkBytes, kChunkBytes));
  auto masks = chunk_masks(tmp.path);
  ASSERT_EQ(masks.size(), 4u);
  EXPECT_EQ(masks[0], kMaskShuffleZstd);
  EXPECT_EQ(masks[1], kMaskZstd);
  EXPECT_EQ(masks[2], kMaskRaw);
  std::string out = tmp.path + ".bin";
  std::string cmd = std::string("HDF5_PLUGIN_PATH=") + FERRY_TEST_PLUGIN_DIR + " /usr/bin/h5dump -d /memory/pages -b LE -o " +
                    out + " " + tmp.path + " >/dev/null 2>" + out + ".err";
  int rc = std::system(cmd.c_str());
  std::ifstream err(out + ".err");
  std::string err_text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << err_text;
  std::ifstream in(out, std::ios::binary);
  std::vector<char> dumped((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(out.c_str());
  std::remove((out + ".err").c_str());
  ASSERT_EQ(dumped.size(), bytes.size());
  EXPECT_EQ(std::memcmp(dumped.data(), bytes.data(), kChunkBytes), 0) << "shuffled chunk";
  EXPECT_EQ(std::memcmp(dumped.data() + kChunkBytes, bytes.data() + kChunkBytes, kChunkBytes), 0) << "zstd chunk";
  EXPECT_EQ(std::memcmp(dumped.data(), bytes.data(), bytes.size()), 0);
}

// Written by the schema 1.4 writer (pipeline [zstd]): chunk 0 zstd (mask 0), chunk 1 a raw
// partial chunk (mask 1). The generator is /tmp-only; its content is rebuilt here.
TEST(ImageCompat, Schema14ImageStillReads) {
  const std::string path = std::string(FERRY_SCHEMA_TESTDATA) + "/v1.4-mixed.h5";
  std::vector<std::byte> bytes((4u << 20) + 8192);
  const char t[] = "ferry schema 1.4 image, chunk 0: zstd. ";
  for (size_t i = 0; i < (4u << 20); ++i) bytes[i] = std::byte(t[i % (sizeof t - 1)] + (i / 4096) % 7);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 4u << 20; i < bytes.size(); ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    bytes[i] = std::byte(x >> 56);
  }
  EXPECT_EQ(chunk_masks(path), (std::vector<unsigned>{kMaskZstdOnlyPipeline, kMaskRawZstdOnlyPipeline}));
  auto reader = ImageReader::open(path);
  ASSERT_TRUE(reader) << reader.error().message();
  EXPECT_EQ((*reader)->image().header.schema_version, "1.4.0");
  ASSERT_TRUE((*reader)->verify_all());
  std::vector<std::byte> back(bytes.size());
  ASSERT_TRUE((*reader)->read_pages(kAddr, back));
  EXPECT_TRUE(back == bytes);
}

}  // namespace
}  // namespace ferry::image
