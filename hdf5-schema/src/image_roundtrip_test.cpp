// SPDX-License-Identifier: Apache-2.0
// Round trip of a ProcessImage with every field set through ImageWriter and ImageReader:
// pages spanning several chunks and runs, blobs, mode 0600, and the writer's protocol errors.
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdlib>

#include <chrono>
#include <cstring>
#include <set>

#include "chunk_store.hpp"
#include "ferry/image/reader.hpp"
#include "ferry/image/writer.hpp"
#include "test_fixture.hpp"

namespace ferry::image {
namespace {

using testing::fill_pages;
using testing::full_image;
using testing::kPage;
using testing::TempFile;

struct Written {
  ProcessImage expected;  // what the reader must return
  std::vector<std::pair<uint64_t, uint64_t>> runs;  // (addr, bytes) appended
  std::vector<std::vector<std::byte>> blobs;
};

// Writes full_image() with three page runs (one of 10 MiB, appended in 1 MiB + odd pieces so
// it spans three chunks) and two blobs (64 KiB; 5 MiB + 100 bytes, in uneven pieces).
Written write_full(const std::string& path) {
  Written w;
  w.expected = full_image();
  auto writer = ImageWriter::create(path);
  EXPECT_TRUE(writer) << writer.error().message();
  auto& wr = **writer;
  // run 1: heap, 33 pages in one call
  // run 2: anon, 10 MiB in pieces: 1 MiB x 9, then 3 pages, then the rest
  // run 3: stack, 5 pages, appended as 2 + 3 (merged)
  auto put = [&](uint64_t addr, uint64_t bytes) {
    std::vector<std::byte> buf(bytes);
    fill_pages(addr, buf);
    auto r = wr.append_pages(addr, buf);
    EXPECT_TRUE(r) << r.error().message();
  };
  put(0x500000, 33 * kPage);
  uint64_t a = 0x7f0000000000;
  for (int i = 0; i < 9; ++i, a += 1 << 20) put(a, 1 << 20);
  put(a, 3 * kPage);
  a += 3 * kPage;
  uint64_t rest = (10u << 20) - 9 * (1u << 20) - 3 * kPage;
  put(a, rest);
  put(0x7ffc00000000, 2 * kPage);
  put(0x7ffc00000000 + 2 * kPage, 3 * kPage);
  w.runs = {{0x500000, 33 * kPage}, {0x7f0000000000, 10u << 20}, {0x7ffc00000000, 5 * kPage}};
  w.expected.page_runs = {{0x500000, 33, 0},
                          {0x7f0000000000, (10u << 20) / kPage, 33 * kPage},
                          {0x7ffc00000000, 5, 33 * kPage + (10u << 20)}};

  std::vector<std::pair<std::string, size_t>> blobs = {{"memfd:ring", 65536},
                                                       {"fd 5 (deleted /tmp/x)", (5u << 20) + 100}};
  for (auto& [name, size] : blobs) {
    std::vector<std::byte> data(size);
    fill_pages(size * 31, data);
    for (size_t i = data.size() & ~size_t{7}; i < data.size(); ++i) data[i] = std::byte{0x5a};
    auto id = wr.begin_blob(size, name);
    EXPECT_TRUE(id) << id.error().message();
    size_t off = 0, piece = 777777;
    while (off < size) {
      size_t n = std::min(piece, size - off);
      auto r = wr.append_blob_data(*id, std::span<const std::byte>(data).subspan(off, n));
      EXPECT_TRUE(r) << r.error().message();
      off += n;
    }
    w.expected.blobs.push_back({*id, size, name});
    w.blobs.push_back(std::move(data));
  }
  auto r = wr.finish(w.expected);
  EXPECT_TRUE(r) << r.error().message();
  EXPECT_GE(wr.bytes_written(), 33 * kPage + (10u << 20) + 5 * kPage + (5u << 20));
  w.expected.header.schema_version = kSchemaVersion;
  w.expected.header.record_kinds = kKnownRecordKinds;  // the fixture holds every kind
  return w;
}

TEST(ImageRoundTrip, EveryFieldAndAllBytes) {
  TempFile tmp("roundtrip");
  Written w = write_full(tmp.path);

  struct stat st {};
  ASSERT_EQ(::stat(tmp.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader) << reader.error().message();
  auto& rd = **reader;
  const ProcessImage& got = rd.image();
  EXPECT_EQ(got.header, w.expected.header);
  EXPECT_EQ(got.process, w.expected.process);
  EXPECT_EQ(got.regions, w.expected.regions);
  EXPECT_EQ(got.mapped_files, w.expected.mapped_files);
  EXPECT_EQ(got.threads, w.expected.threads);
  EXPECT_EQ(got.signals, w.expected.signals);
  EXPECT_EQ(got.fds, w.expected.fds);
  EXPECT_EQ(got.blobs, w.expected.blobs);
  EXPECT_EQ(got.page_runs, w.expected.page_runs);
  EXPECT_EQ(got.self_checkpoint, w.expected.self_checkpoint);
  EXPECT_EQ(got, w.expected);
  EXPECT_EQ(rd.page_chunks(), 3u);
  EXPECT_EQ(rd.blob_chunks(), 2u);

  // Whole runs, then reads that straddle chunk boundaries.
  for (auto [addr, bytes] : w.runs) {
    std::vector<std::byte> want(bytes), have(bytes);
    fill_pages(addr, want);
    ASSERT_TRUE(rd.read_pages(addr, have));
    EXPECT_EQ(want, have) << "run at " << addr;
  }
  {
    uint64_t base = 0x7f0000000000;
    std::vector<std::byte> all(10u << 20);
    fill_pages(base, all);
    // Pages were filled per append call, so compare against what was appended: re-read run 2
    // piecewise and check each piece equals the same slice of a whole-run read.
    std::vector<std::byte> whole(10u << 20);
    ASSERT_TRUE(rd.read_pages(base, whole));
    for (uint64_t off : {uint64_t{0}, uint64_t{4 << 20} - 100, uint64_t{8 << 20} - 1,
                         uint64_t{(10 << 20) - 5}}) {
      std::vector<std::byte> piece(std::min<uint64_t>(3000000, (10u << 20) - off));
      ASSERT_TRUE(rd.read_pages(base + off, piece));
      EXPECT_TRUE(std::equal(piece.begin(), piece.end(), whole.begin() + off));
    }
  }
  for (size_t id = 0; id < w.blobs.size(); ++id) {
    std::vector<std::byte> have(w.blobs[id].size());
    ASSERT_TRUE(rd.read_blob(static_cast<uint32_t>(id), 0, have));
    EXPECT_EQ(have, w.blobs[id]);
    std::vector<std::byte> tail(50);
    ASSERT_TRUE(rd.read_blob(static_cast<uint32_t>(id), have.size() - 50, tail));
    EXPECT_TRUE(std::equal(tail.begin(), tail.end(), have.end() - 50));
  }
  EXPECT_TRUE(rd.verify_all());

  // Out-of-range reads are refused, not served.
  std::vector<std::byte> buf(kPage);
  EXPECT_FALSE(rd.read_pages(0x600000, buf));
  EXPECT_FALSE(rd.read_pages(0x7ffc00000000 + 4 * kPage + 1, buf));
  EXPECT_FALSE(rd.read_blob(0, 65536 - 10, buf));
  EXPECT_FALSE(rd.read_blob(7, 0, buf));
}

TEST(ImageRoundTrip, MinimalImageHasOnlyMemory) {
  TempFile tmp("minimal");
  auto writer = ImageWriter::create(tmp.path);
  ASSERT_TRUE(writer);
  ProcessImage im;
  im.header.abi = "x86_64";
  im.header.page_size = static_cast<uint32_t>(kPage);
  ASSERT_TRUE((*writer)->finish(im));
  auto reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader) << reader.error().message();
  EXPECT_EQ((*reader)->image().header.record_kinds, uint64_t{kRecMemory});
  EXPECT_TRUE((*reader)->image().page_runs.empty());
  EXPECT_EQ((*reader)->page_bytes(), 0u);
  EXPECT_TRUE((*reader)->verify_all());
}

TEST(ImageRoundTrip, SmallImageIsSmallOnDisk) {
  TempFile tmp("small");
  auto writer = ImageWriter::create(tmp.path);
  ASSERT_TRUE(writer);
  std::vector<std::byte> pages(2 * kPage);
  fill_pages(0x10000, pages);
  ASSERT_TRUE((*writer)->append_pages(0x10000, pages));
  ProcessImage im;
  im.header.abi = "x86_64";
  im.header.page_size = static_cast<uint32_t>(kPage);
  im.regions = {{0x10000, 0x12000, 3, 2, RegionKind::anon_private, 0, -1, -1, ""}};
  ASSERT_TRUE((*writer)->finish(im));
  struct stat st {};
  ASSERT_EQ(::stat(tmp.path.c_str(), &st), 0);
  // The 4 MiB chunk is stored padded, but the padding is a hole (ext4, xfs, tmpfs, btrfs).
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "padding of the last chunk was not punched out";
  auto reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader);
  std::vector<std::byte> back(2 * kPage);
  ASSERT_TRUE((*reader)->read_pages(0x10000, back));
  EXPECT_EQ(back, pages);
  EXPECT_TRUE((*reader)->verify_all());
}

TEST(ImageWriter, RefusesMisuse) {
  TempFile tmp("misuse");
  auto writer = ImageWriter::create(tmp.path);
  ASSERT_TRUE(writer);
  auto& wr = **writer;
  std::vector<std::byte> page(kPage);
  EXPECT_TRUE(wr.append_pages(0x1001, page).error().is(errc::protocol));
  EXPECT_TRUE(wr.append_pages(0x1000, std::span(page).first(100)).error().is(errc::protocol));
  auto id = wr.begin_blob(10, "b");
  ASSERT_TRUE(id);
  EXPECT_TRUE(wr.append_blob_data(*id, page).error().is(errc::protocol));  // overflow
  EXPECT_TRUE(wr.begin_blob(5, "c").error().is(errc::protocol));           // 0 of 10 bytes
  ProcessImage im = full_image();
  EXPECT_TRUE(wr.finish(im).error().is(errc::protocol));  // blob incomplete
}

TEST(ImageWriter, RefusesWrongXsaveSize) {
  TempFile tmp("xsave");
  auto writer = ImageWriter::create(tmp.path);
  ASSERT_TRUE(writer);
  ProcessImage im = full_image();
  im.threads[0].xsave.resize(100);
  auto r = (*writer)->finish(im);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(errc::protocol));
  EXPECT_NE(r.error().message().find("XSAVE"), std::string::npos);
}

TEST(ImageWriter, UnfinishedImageIsRefused) {
  TempFile tmp("unfinished");
  {
    auto writer = ImageWriter::create(tmp.path);
    ASSERT_TRUE(writer);
    std::vector<std::byte> page(kPage);
    ASSERT_TRUE((*writer)->append_pages(0x1000, page));
  }  // destroyed without finish()
  auto reader = ImageReader::open(tmp.path);
  ASSERT_FALSE(reader);
  EXPECT_TRUE(reader.error().is(errc::image_foreign) || reader.error().is(errc::image_corrupt))
      << reader.error().message();
}

// A disk that fills up at every stage of the write -- a chunk, the metadata, the flush, the
// close -- fails the image with an error, and the process goes on and exits normally
// afterwards: nothing left in HDF5 crashes it at exit (a rank supervisor whose checkpoint
// failed must still report its program's own exit status). The disk is a tmpfs of the given
// size, mounted in the child's own mount namespace.
TEST(ImageWriter, FullDiskFailsTheImageAndTheProcessExitsNormally) {
  const uint64_t data = 6u << 20;
  std::vector<uint64_t> sizes = {64 << 10, (4u << 20) - 4096, 4u << 20, (4u << 20) + 8192,
                                 data - 4096, data, data + 4096, data + (8 << 10),
                                 data + (16 << 10), data + (32 << 10)};
  char dir[] = "/tmp/ferry-full-disk-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  int failures = 0;
  for (uint64_t size : sizes) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (::unshare(CLONE_NEWNS) != 0 && ::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) ::_exit(90);
      if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(90);
      std::string opt = "size=" + std::to_string(size);
      if (::mount("tmpfs", dir, "tmpfs", 0, opt.c_str()) != 0) ::_exit(90);
      bool failed = false;
      {
        auto writer = ImageWriter::create(std::string(dir) + "/image.h5");
        if (!writer) {
          failed = true;
        } else {
          std::vector<std::byte> buf(data);
          fill_pages(0x10000, buf);
          auto r = (*writer)->append_pages(0x10000, buf);
          if (r) r = (*writer)->finish(full_image());
          failed = !r;
        }
      }  // the writer is destroyed after its failure, as the dump does
      std::exit(failed ? 0 : 3);  // runs HDF5's exit handlers
    }
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 90) {
      ::rmdir(dir);
      GTEST_SKIP() << "cannot mount a tmpfs in a new mount namespace here";
    }
    EXPECT_TRUE(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3))
        << "tmpfs of " << size << " bytes: "
        << (WIFSIGNALED(st) ? "signal " + std::to_string(WTERMSIG(st)) : "exit " + std::to_string(WEXITSTATUS(st)));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) ++failures;
    if (size < data) {
      EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << size << " bytes cannot hold the image";
    }
  }
  ::rmdir(dir);
  EXPECT_GE(failures, 6);
}

// Not a correctness test: prints the write rate of 256 MiB of pages to /tmp.
TEST(ImageCompat, Schema10ImageStillReads) {
  // Written by ferry 0.1.0 (schema 1.0.0, raw chunks, no filter in the pipeline).
  auto reader = ImageReader::open(std::string(FERRY_SCHEMA_TESTDATA) + "/v1.0-sleep.h5");
  ASSERT_TRUE(reader) << reader.error().message();
  EXPECT_EQ((*reader)->image().header.schema_version, "1.0.0");
  EXPECT_GT((*reader)->page_bytes(), 0u);
  ASSERT_TRUE((*reader)->verify_all());
  const auto& run = (*reader)->image().page_runs.front();
  std::vector<std::byte> page(kPage);
  ASSERT_TRUE((*reader)->read_pages(run.addr, page));
}

TEST(ImageRoundTrip, CompressibleChunksShrinkAndReadBack) {
  constexpr uint64_t kTotal = uint64_t{12} << 20;
  std::vector<std::byte> bytes(kTotal);
  for (uint64_t i = 0; i < kTotal / 8; ++i) {  // smooth doubles: compressible
    double d = 300.0 + 25.0 * static_cast<double>(i % 100000) * 1e-5;
    std::memcpy(bytes.data() + i * 8, &d, 8);
  }
  std::vector<std::byte> noise(4 << 20);
  fill_pages(7, noise);
  std::memcpy(bytes.data() + (4 << 20), noise.data(), noise.size());  // chunk 1: random, raw
  ProcessImage im;
  im.header.abi = "x86_64";
  im.header.page_size = static_cast<uint32_t>(kPage);
  // Whether a chunk is compressed rests on its sample's speed on the thread's CPU clock, which
  // counts steal time on a loaded VM (CI once stored all three raw): three tries to compress.
  for (int attempt = 0; attempt < 3; ++attempt) {
    TempFile tmp("compress");
    auto writer = ImageWriter::create(tmp.path);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->append_pages(0x7f0000000000, bytes));
    ASSERT_TRUE((*writer)->finish(im));
    EXPECT_GE((*writer)->bytes_written(), uint64_t{4} << 20);  // chunk 1 raw
    auto reader = ImageReader::open(tmp.path);
    ASSERT_TRUE(reader) << reader.error().message();
    ASSERT_TRUE((*reader)->verify_all());
    std::vector<std::byte> back(kTotal);
    ASSERT_TRUE((*reader)->read_pages(0x7f0000000000, back));
    EXPECT_TRUE(back == bytes);
    if ((*writer)->bytes_written() < kTotal * 3 / 4) return;  // chunks 0 and 2 compressed
  }
  ADD_FAILURE() << "three images of 12 MiB, two chunks of smooth doubles each, none compressed";
}

// Capture's zero-copy path: page bytes written straight into the writer's chunk buffers
// (page_buffer/commit_pages), in pieces that straddle chunks and as two runs; raw chunks are
// written at 4 KiB aligned file offsets (O_DIRECT, chunk_pipeline.hpp) and read back exactly.
TEST(ImageWriter, PageBufferCommitsRunsAndRawChunksAreAligned) {
  TempFile tmp("pagebuf");
  constexpr uint64_t kA = 0x7f0000000000, kB = 0x7f0001000000;
  std::vector<std::byte> a(uint64_t{9} << 20), b(uint64_t{3} << 20);
  fill_pages(kA, a);
  fill_pages(kB, b);
  auto writer = ImageWriter::create(tmp.path);
  ASSERT_TRUE(writer);
  auto put = [&](uint64_t addr, const std::vector<std::byte>& src) {
    for (size_t off = 0; off < src.size();) {
      auto buf = (*writer)->page_buffer(std::min<size_t>(src.size() - off, 3 << 20));
      ASSERT_TRUE(buf);
      ASSERT_FALSE(buf->empty());
      ASSERT_EQ(reinterpret_cast<uintptr_t>(buf->data()) % kPage, 0u);
      std::memcpy(buf->data(), src.data() + off, buf->size());
      ASSERT_TRUE((*writer)->commit_pages(addr + off, buf->size()));
      off += buf->size();
    }
  };
  put(kA, a);
  put(kB, b);
  EXPECT_FALSE((*writer)->commit_pages(kB + b.size() + 1, kPage));  // not page aligned
  ProcessImage im;
  im.header.abi = "x86_64";
  im.header.page_size = static_cast<uint32_t>(kPage);
  ASSERT_TRUE((*writer)->finish(im));
  {
    hid_t f = H5Fopen(tmp.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    hid_t d = H5Dopen2(f, "/memory/pages", H5P_DEFAULT);
    ASSERT_GE(d, 0);
    hid_t space = H5Dget_space(d);
    hsize_t n = 0;
    ASSERT_GE(H5Dget_num_chunks(d, space, &n), 0);
    EXPECT_EQ(n, 3u);
    for (hsize_t i = 0; i < n; ++i) {
      hsize_t coord[1] = {0}, size = 0;
      unsigned mask = 0;
      haddr_t addr = 0;
      ASSERT_GE(H5Dget_chunk_info(d, space, i, coord, &mask, &addr, &size), 0);
      if (size == kChunkBytes) {
        EXPECT_EQ(addr % 4096, 0u) << "raw chunk " << i;
      }
    }
    H5Sclose(space);
    H5Dclose(d);
    H5Fclose(f);
  }
  auto reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader) << reader.error().message();
  ASSERT_TRUE((*reader)->verify_all());
  const auto& runs = (*reader)->image().page_runs;
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].addr, kA);
  EXPECT_EQ(runs[1].addr, kB);
  std::vector<std::byte> back_a(a.size()), back_b(b.size());
  ASSERT_TRUE((*reader)->read_pages(kA, back_a));
  ASSERT_TRUE((*reader)->read_pages(kB, back_b));
  EXPECT_TRUE(back_a == a);
  EXPECT_TRUE(back_b == b);
}

// The chunk buffers of a finished image serve the next image of the process (chunk_pipeline.hpp
// "Buffer reuse": fresh pages cost a hypervisor fault each on the project VM), and nothing of
// the first image's bytes leaks into the second.
TEST(ImageWriter, ChunkBuffersOfOneImageServeTheNextWithoutLeaking) {
  constexpr uint64_t kA = 0x7f0000000000;
  std::set<const std::byte*> first_buffers;
  auto write = [&](const std::string& path, const std::vector<std::byte>& src, std::set<const std::byte*>& seen) {
    auto writer = ImageWriter::create(path);
    ASSERT_TRUE(writer);
    for (size_t off = 0; off < src.size();) {
      auto buf = (*writer)->page_buffer(std::min<size_t>(src.size() - off, 1 << 20));
      ASSERT_TRUE(buf);
      ASSERT_FALSE(buf->empty());
      if (off % kChunkBytes == 0) seen.insert(buf->data());  // the start of a chunk buffer
      std::memcpy(buf->data(), src.data() + off, buf->size());
      ASSERT_TRUE((*writer)->commit_pages(kA + off, buf->size()));
      off += buf->size();
    }
    ProcessImage im;
    im.header.abi = "x86_64";
    im.header.page_size = static_cast<uint32_t>(kPage);
    ASSERT_TRUE((*writer)->finish(im));
  };
  TempFile one("reuse1"), two("reuse2");
  std::vector<std::byte> a(uint64_t{9} << 20), b((uint64_t{5} << 20) + 3 * kPage);
  fill_pages(kA, a);
  std::memset(b.data(), 0x6b, b.size());
  write(one.path, a, first_buffers);
  std::set<const std::byte*> second_buffers;
  write(two.path, b, second_buffers);
  size_t shared = 0;
  for (const std::byte* p : second_buffers) shared += first_buffers.count(p);
  EXPECT_GT(shared, 0u) << "the second image got only fresh chunk buffers";
  auto reader = ImageReader::open(two.path);
  ASSERT_TRUE(reader) << reader.error().message();
  ASSERT_TRUE((*reader)->verify_all());
  std::vector<std::byte> back(b.size());
  ASSERT_TRUE((*reader)->read_pages(kA, back));
  EXPECT_TRUE(back == b);
}

TEST(ImageThroughput, Write256MiB) {
  TempFile tmp("throughput");
  constexpr uint64_t kTotal = uint64_t{256} << 20, kBatch = uint64_t{4} << 20;
  std::vector<std::byte> batch(kBatch);
  fill_pages(1, batch);
  auto t0 = std::chrono::steady_clock::now();
  auto writer = ImageWriter::create(tmp.path);
  ASSERT_TRUE(writer);
  for (uint64_t off = 0; off < kTotal; off += kBatch)
    ASSERT_TRUE((*writer)->append_pages(0x7f0000000000 + off, batch));
  ProcessImage im;
  im.header.abi = "x86_64";
  im.header.page_size = static_cast<uint32_t>(kPage);
  ASSERT_TRUE((*writer)->finish(im));
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[throughput] wrote %llu MiB of pages (incl. fsync) in %.3f s: %.0f MB/s\n",
              static_cast<unsigned long long>(kTotal >> 20), s, kTotal / s / 1e6);
  auto t1 = std::chrono::steady_clock::now();
  auto reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader);
  ASSERT_TRUE((*reader)->verify_all());
  s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf("[throughput] verify_all of %llu MiB (page cache warm): %.3f s: %.0f MB/s\n",
              static_cast<unsigned long long>(kTotal >> 20), s, kTotal / s / 1e6);
}

}  // namespace
}  // namespace ferry::image
