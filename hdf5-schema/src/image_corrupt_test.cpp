// SPDX-License-Identifier: Apache-2.0
// Damaged, foreign and future images must be refused with the right errc and a message naming
// the file and the check: flipped bytes in chunks and metadata, truncation, i386 ABI, unknown
// record kinds, other major versions, missing datasets. Also: validate, describe, h5dump.
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "chunk_store.hpp"
#include "ferry/image/describe.hpp"
#include "ferry/image/names.hpp"
#include "ferry/image/reader.hpp"
#include "ferry/image/validate.hpp"
#include "ferry/image/writer.hpp"
#include "schema_fields.hpp"
#include "tables.hpp"
#include "test_fixture.hpp"

namespace ferry::image {
namespace {

using testing::fill_pages;
using testing::flip_byte;
using testing::full_image;
using testing::kPage;
using testing::TempFile;
namespace n = names;

constexpr uint64_t kAnon = 0x7f0000000000;
constexpr uint64_t kAnonBytes = uint64_t{10} << 20;  // 2.5 chunks

// full_image() with 10 MiB of pages in one run and one 64 KiB blob (blob 0, for the memfd).
void write_image(const std::string& path, const ProcessImage& im = full_image()) {
  auto w = ImageWriter::create(path);
  ASSERT_TRUE(w) << w.error().message();
  std::vector<std::byte> buf(kAnonBytes);
  fill_pages(kAnon, buf);
  ASSERT_TRUE((*w)->append_pages(kAnon, buf));
  std::vector<std::byte> blob(65536);
  fill_pages(1, blob);
  auto id = (*w)->begin_blob(blob.size(), "memfd:ring");
  ASSERT_TRUE(id);
  ASSERT_TRUE((*w)->append_blob_data(*id, blob));
  auto r = (*w)->finish(im);
  ASSERT_TRUE(r) << r.error().message();
}

// Runs fn on the image opened read-write with HDF5 (to tamper with it).
template <class Fn>
void tamper(const std::string& path, Fn fn) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  fn(f);
  ASSERT_GE(H5Fclose(f), 0);
}

// File address of chunk `index` of a chunked dataset.
haddr_t chunk_address(const std::string& path, std::string_view dset_path, hsize_t index) {
  haddr_t addr = HADDR_UNDEF;
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, std::string(dset_path).c_str(), H5P_DEFAULT);
  hid_t s = H5Dget_space(d);
  hsize_t offset[1];
  unsigned mask = 0;
  hsize_t size = 0;
  EXPECT_GE(H5Dget_chunk_info(d, s, index, offset, &mask, &addr, &size), 0);
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  return addr;
}

haddr_t contiguous_address(const std::string& path, std::string_view dset_path) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, std::string(dset_path).c_str(), H5P_DEFAULT);
  haddr_t a = H5Dget_offset(d);
  H5Dclose(d);
  H5Fclose(f);
  return a;
}


void set_string_attr(hid_t obj, std::string_view name, const std::string& v) {
  std::string nm(name);
  if (H5Aexists(obj, nm.c_str()) > 0) H5Adelete(obj, nm.c_str());
  ASSERT_TRUE(h5::write_string_attr(obj, name, v));
}

void set_u64_attr(hid_t obj, std::string_view name, uint64_t v) {
  std::string nm(name);
  if (H5Aexists(obj, nm.c_str()) > 0) H5Adelete(obj, nm.c_str());
  ASSERT_TRUE(h5::write_u64_attr(obj, name, v));
}

// Rewrites the header checksum to match the (tampered) header attributes: models a writer
// of another version, whose image is internally consistent.
void reseal_header(hid_t f) {
  ImageHeader h;
  h.schema_version = "?";
  auto r = tables::read_attrs(f, schema::header_fields(), h, n::kHeaderXxh3, "/", "x");
  (void)r;  // the checksum mismatches by construction; the fields are read anyway
  set_u64_attr(f, n::kHeaderXxh3, tables::attrs_checksum(schema::header_fields(), h));
}

bool mentions(const Error& e, const std::string& s) {
  return e.message().find(s) != std::string::npos;
}

TEST(ImageCorrupt, FlippedByteInPagesChunk) {
  TempFile tmp("flip-pages");
  write_image(tmp.path);
  flip_byte(tmp.path, chunk_address(tmp.path, n::kPages, 1) + 12345);

  auto reader = ImageReader::open(tmp.path);  // metadata is intact
  ASSERT_TRUE(reader) << reader.error().message();
  std::vector<std::byte> buf(kPage);
  EXPECT_TRUE((*reader)->read_pages(kAnon, buf));  // chunk 0 is fine
  auto r = (*reader)->read_pages(kAnon + kChunkBytes + 8192, buf);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(errc::image_corrupt));
  EXPECT_TRUE(mentions(r.error(), "/memory/pages chunk 1")) << r.error().message();
  EXPECT_TRUE(mentions(r.error(), tmp.path)) << r.error().message();
  auto v = (*reader)->verify_all();
  ASSERT_FALSE(v);
  EXPECT_TRUE(v.error().is(errc::image_corrupt));
  EXPECT_TRUE(mentions(v.error(), "chunk 1")) << v.error().message();

  auto rep = validate_image(tmp.path, /*deep=*/false);
  ASSERT_TRUE(rep);
  EXPECT_TRUE(rep->ok());  // shallow validation does not read the chunks
  rep = validate_image(tmp.path, /*deep=*/true);
  ASSERT_TRUE(rep);
  ASSERT_FALSE(rep->ok());
  EXPECT_TRUE(rep->error->is(errc::image_corrupt));
  EXPECT_FALSE(rep->checks.back().ok);
}

TEST(ImageCorrupt, FlippedByteInBlobChunk) {
  TempFile tmp("flip-blob");
  write_image(tmp.path);
  flip_byte(tmp.path, chunk_address(tmp.path, n::kBlobsData, 0) + 100);
  auto reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader) << reader.error().message();
  std::vector<std::byte> buf(10);
  auto r = (*reader)->read_blob(0, 0, buf);
  ASSERT_FALSE(r);
  EXPECT_TRUE(mentions(r.error(), "/blobs/data chunk 0")) << r.error().message();
  EXPECT_FALSE((*reader)->verify_all());
}

TEST(ImageCorrupt, FlippedByteInMetadata) {
  // Every contiguous metadata dataset: a flipped byte of its raw data is caught by its checksum.
  for (std::string_view ds : {n::kRegions, n::kPageRuns, n::kThreadsRegs, n::kThreadsXsave,
                              n::kSignalActions, n::kFds, n::kProcessAuxv, n::kPagesXxh3,
                              n::kBlobsTable, n::kMappedFiles, n::kProcessRlimits}) {
    TempFile tmp("flip-meta");
    write_image(tmp.path);
    haddr_t a = contiguous_address(tmp.path, ds);
    ASSERT_NE(a, HADDR_UNDEF) << ds;
    // A byte of the first numeric field (identities start with a 16-byte string reference).
    flip_byte(tmp.path, a + (ds == n::kMappedFiles ? 18 : 2));
    auto reader = ImageReader::open(tmp.path);
    ASSERT_FALSE(reader) << ds;
    EXPECT_TRUE(reader.error().is(errc::image_corrupt)) << reader.error().message();
    EXPECT_TRUE(mentions(reader.error(), std::string(ds))) << reader.error().message();
    auto rep = validate_image(tmp.path, false);
    ASSERT_TRUE(rep);
    EXPECT_FALSE(rep->ok());
  }
}

// String contents live in HDF5's global heap, outside the tables: found by their bytes.
TEST(ImageCorrupt, FlippedByteInString) {
  TempFile tmp("flip-string");
  write_image(tmp.path);
  std::string bytes;
  {
    FILE* f = std::fopen(tmp.path.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    std::vector<char> buf(1 << 20);
    size_t got;
    while ((got = std::fread(buf.data(), 1, buf.size(), f)) > 0) bytes.append(buf.data(), got);
    std::fclose(f);
  }
  size_t at = bytes.find("/home/u/run/out.txt");
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(bytes.find("/home/u/run/out.txt", at + 1), std::string::npos);
  flip_byte(tmp.path, at + 3);
  auto reader = ImageReader::open(tmp.path);
  ASSERT_FALSE(reader);
  EXPECT_TRUE(reader.error().is(errc::image_corrupt));
  EXPECT_TRUE(mentions(reader.error(), "checksum mismatch in dataset /files/fds"))
      << reader.error().message();
}

TEST(ImageCorrupt, ChangedHeaderAttribute) {
  TempFile tmp("header");
  write_image(tmp.path);
  tamper(tmp.path, [](hid_t f) { set_string_attr(f, n::kHost, "othernode"); });
  auto reader = ImageReader::open(tmp.path);
  ASSERT_FALSE(reader);
  EXPECT_TRUE(reader.error().is(errc::image_corrupt));
  EXPECT_TRUE(mentions(reader.error(), "checksum mismatch in attributes of /"))
      << reader.error().message();
}

TEST(ImageCorrupt, ChangedProcessAttribute) {
  TempFile tmp("process");
  write_image(tmp.path);
  tamper(tmp.path, [](hid_t f) {
    hid_t g = H5Gopen2(f, "/process", H5P_DEFAULT);
    set_string_attr(g, n::kCwd, "/elsewhere");
    H5Gclose(g);
  });
  auto reader = ImageReader::open(tmp.path);
  ASSERT_FALSE(reader);
  EXPECT_TRUE(mentions(reader.error(), "/process")) << reader.error().message();
}

TEST(ImageCorrupt, TruncatedFile) {
  TempFile tmp("truncated");
  write_image(tmp.path);
  struct stat st {};
  ASSERT_EQ(::stat(tmp.path.c_str(), &st), 0);
  for (off_t size : {st.st_size / 2, st.st_size - 1, off_t{4096}, off_t{100}}) {
    ASSERT_EQ(::truncate(tmp.path.c_str(), size), 0);
    auto reader = ImageReader::open(tmp.path);
    ASSERT_FALSE(reader) << size;
    EXPECT_TRUE(reader.error().is(errc::image_corrupt)) << reader.error().message();
    EXPECT_TRUE(mentions(reader.error(), tmp.path));
    auto rep = validate_image(tmp.path, true);
    ASSERT_TRUE(rep);
    EXPECT_FALSE(rep->ok());
  }
  ASSERT_EQ(::truncate(tmp.path.c_str(), 0), 0);
  auto reader = ImageReader::open(tmp.path);
  ASSERT_FALSE(reader);
  EXPECT_TRUE(reader.error().is(errc::image_foreign)) << reader.error().message();
}

TEST(ImageCorrupt, ShrunkPagesDataset) {
  TempFile tmp("shrunk");
  write_image(tmp.path);
  tamper(tmp.path, [](hid_t f) {
    hid_t d = H5Dopen2(f, std::string(n::kPages).c_str(), H5P_DEFAULT);
    hsize_t ext[1] = {kChunkBytes};
    ASSERT_GE(H5Dset_extent(d, ext), 0);
    H5Dclose(d);
  });
  auto reader = ImageReader::open(tmp.path);
  ASSERT_FALSE(reader);
  EXPECT_TRUE(reader.error().is(errc::image_corrupt));
  EXPECT_TRUE(mentions(reader.error(), "/memory/pages holds")) << reader.error().message();
}

TEST(ImageCorrupt, MissingDataset) {
  TempFile tmp("missing");
  write_image(tmp.path);
  tamper(tmp.path, [](hid_t f) {
    ASSERT_GE(H5Ldelete(f, std::string(n::kSignalActions).c_str(), H5P_DEFAULT), 0);
  });
  auto reader = ImageReader::open(tmp.path);
  ASSERT_FALSE(reader);
  EXPECT_TRUE(reader.error().is(errc::image_corrupt));
  EXPECT_TRUE(mentions(reader.error(), "missing dataset /signals/actions"))
      << reader.error().message();
}

TEST(ImageForeign, I386AbiIsRefused) {
  TempFile tmp("i386");
  ProcessImage im = full_image();
  im.header.abi = "i386";
  write_image(tmp.path, im);
  auto reader = ImageReader::open(tmp.path);
  ASSERT_FALSE(reader);
  EXPECT_TRUE(reader.error().is(errc::image_foreign));
  EXPECT_TRUE(mentions(reader.error(), "image is for ABI i386; this ferry restores x86_64"))
      << reader.error().message();
}

TEST(ImageForeign, NotHdf5AndNoMagic) {
  TempFile text("text");
  {
    FILE* f = std::fopen(text.path.c_str(), "w");
    std::fputs("hello, not an image\n", f);
    std::fclose(f);
  }
  auto r1 = ImageReader::open(text.path);
  ASSERT_FALSE(r1);
  EXPECT_TRUE(r1.error().is(errc::image_foreign));
  EXPECT_TRUE(mentions(r1.error(), "not a ferry image")) << r1.error().message();

  TempFile plain("plain-hdf5");
  H5Fclose(H5Fcreate(plain.path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  auto r2 = ImageReader::open(plain.path);
  ASSERT_FALSE(r2);
  EXPECT_TRUE(r2.error().is(errc::image_foreign));
  EXPECT_TRUE(mentions(r2.error(), "not a ferry image")) << r2.error().message();

  auto r3 = ImageReader::open("/nonexistent/ferry.h5");
  ASSERT_FALSE(r3);
  EXPECT_EQ(r3.error().code(), std::error_code(ENOENT, std::system_category()));
  EXPECT_FALSE(validate_image("/nonexistent/ferry.h5", false));
}

TEST(ImageVersion, UnknownRecordKindIsRefused) {
  TempFile tmp("kinds");
  write_image(tmp.path);
  tamper(tmp.path, [](hid_t f) {
    set_u64_attr(f, n::kRecordKinds, kKnownRecordKinds | (uint64_t{1} << 40));
    reseal_header(f);
  });
  auto reader = ImageReader::open(tmp.path);
  ASSERT_FALSE(reader);
  EXPECT_TRUE(reader.error().is(errc::image_version));
  EXPECT_TRUE(mentions(reader.error(), "record kinds 0x10000000000")) << reader.error().message();
}

TEST(ImageVersion, MajorVersionIsRefusedMinorAccepted) {
  TempFile tmp("version");
  write_image(tmp.path);
  tamper(tmp.path, [](hid_t f) {
    set_string_attr(f, n::kSchemaVersion, "2.0.0");
    reseal_header(f);
  });
  auto reader = ImageReader::open(tmp.path);
  ASSERT_FALSE(reader);
  EXPECT_TRUE(reader.error().is(errc::image_version));
  EXPECT_TRUE(mentions(reader.error(), "schema version 2.0.0")) << reader.error().message();

  tamper(tmp.path, [](hid_t f) {
    set_string_attr(f, n::kSchemaVersion, "1.7.2");
    reseal_header(f);
  });
  reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader) << reader.error().message();
  EXPECT_EQ((*reader)->image().header.schema_version, "1.7.2");
}

// A later 1.x writer may append fields to a table (keeping `xxh3` over the 1.0 fields): a 1.0
// reader must read the table by field name and ignore the new field.
TEST(ImageVersion, AppendedTableFieldIsIgnored) {
  TempFile tmp("newfield");
  ProcessImage im = full_image();
  write_image(tmp.path, im);
  tamper(tmp.path, [&](hid_t f) {
    ASSERT_GE(H5Ldelete(f, std::string(n::kRegions).c_str(), H5P_DEFAULT), 0);
    auto fields = schema::region_fields();
    fields.push_back({"future_field", tables::Col::u64, [](const Region&) { return uint64_t{77}; },
                      [](Region&, uint64_t) {}, {}, {}});
    ASSERT_TRUE(tables::write_table(f, n::kRegions, fields, std::span<const Region>(im.regions),
                                    "x"));
    hid_t d = H5Dopen2(f, std::string(n::kRegions).c_str(), H5P_DEFAULT);
    H5Adelete(d, std::string(n::kXxh3).c_str());
    ASSERT_TRUE(h5::write_u64_attr(
        d, n::kXxh3,
        tables::table_checksum(schema::region_fields(), std::span<const Region>(im.regions))));
    H5Dclose(d);
  });
  auto reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader) << reader.error().message();
  EXPECT_EQ((*reader)->image().regions, im.regions);
}

TEST(ImageValidate, GoodImageReportsEveryCheck) {
  TempFile tmp("validate");
  ProcessImage im = full_image();
  write_image(tmp.path, im);
  auto rep = validate_image(tmp.path, true);
  ASSERT_TRUE(rep);
  EXPECT_TRUE(rep->ok()) << to_text(*rep);
  EXPECT_GE(rep->checks.size(), 20u);
  for (const auto& c : rep->checks) EXPECT_TRUE(c.ok) << c.name << ": " << c.detail;
  EXPECT_EQ(rep->checks.front().name, "HDF5 file");
  EXPECT_EQ(rep->checks.back().name, "chunk checksums (deep)");
  std::string text = to_text(*rep);
  EXPECT_NE(text.find("validation (deep): OK"), std::string::npos) << text;
  EXPECT_TRUE(to_json(*rep)["ok"].get<bool>());
}

TEST(ImageValidate, InconsistentTablesAreReported) {
  TempFile tmp("inconsistent");
  ProcessImage im = full_image();
  im.regions[1].blob = 9;  // no such blob
  write_image(tmp.path, im);
  auto rep = validate_image(tmp.path, false);
  ASSERT_TRUE(rep);
  ASSERT_FALSE(rep->ok());
  EXPECT_TRUE(rep->error->is(errc::image_corrupt));
  EXPECT_TRUE(mentions(*rep->error, "refers to blob 9")) << rep->error->message();
}

TEST(ImageValidate, PipeBytesMustMatchTheirBlob) {
  TempFile tmp("pipebytes");
  ProcessImage im = full_image();
  im.pipes[0].bytes = 100;  // blob 0 holds 65536
  write_image(tmp.path, im);
  auto rep = validate_image(tmp.path, false);
  ASSERT_TRUE(rep);
  ASSERT_FALSE(rep->ok());
  EXPECT_TRUE(mentions(*rep->error, "pipe 4242 has 100 bytes but its blob 65536")) << rep->error->message();
}

// A 1.1 image (no /pipes, /zombies, /files/shared and none of their record kinds) still loads.
TEST(ImageVersion, SchemaOneOneImageLoads) {
  TempFile tmp("v11");
  ProcessImage im = full_image();
  im.pipes.clear();
  im.pipe_ends.clear();
  im.zombies.clear();
  im.shared_fds.clear();
  write_image(tmp.path, im);
  tamper(tmp.path, [](hid_t f) {
    set_string_attr(f, n::kSchemaVersion, "1.1.0");
    reseal_header(f);
  });
  auto reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader) << reader.error().message();
  EXPECT_EQ((*reader)->image().header.record_kinds & (kRecPipes | kRecZombies | kRecSharedFds), 0u);
  EXPECT_EQ((*reader)->image().fds, im.fds);
  EXPECT_TRUE((*reader)->image().pipe_ends.empty());
}

TEST(ImageDescribe, TextAndJson) {
  TempFile tmp("describe");
  write_image(tmp.path);
  auto reader = ImageReader::open(tmp.path);
  ASSERT_TRUE(reader);
  std::string text = to_text((*reader)->image());
  std::printf("%s", text.c_str());
  for (const char* want : {"schema 1.5.0", "incremental: generation 12", "generation 3 (../gen-000003/rank-0.h5): 64.0K",
                           "gen 7: 32.0K", "abi x86_64", "[heap]", "anon", "10.0M", "SIGINT",
                           "SIG_IGN", "O_RDWR|O_APPEND", "memfd:ring", "x87 sse avx",
                           "self checkpoint", "ITIMER_REAL", "posix id 2", "eventfd",
                           "semaphore", "timerfd", "signalfd", "epoll", "pending signals",
                           "pipe:[4242]", "buffered 65536 bytes", "fd 10 -> pipe:[4242] description 1",
                           "fifo /tmp/f.fifo", "zombie children (2)", "exited 3", "killed by SIGKILL",
                           "fd 3 = fd 12 of process 1000"})
    EXPECT_NE(text.find(want), std::string::npos) << want;
  auto j = to_json((*reader)->image());
  EXPECT_EQ(j["header"]["abi"], "x86_64");
  EXPECT_EQ(j["regions"].size(), 5u);
  EXPECT_EQ(j["regions"][2]["stored_bytes"], kAnonBytes);
  EXPECT_EQ(j["stored_bytes"]["total"], kAnonBytes + 65536);
  EXPECT_EQ(j["threads"][0]["regs"].size(), 27u);
  // Non-UTF-8 bytes must not make dump() throw.
  ProcessImage odd = (*reader)->image();
  odd.process.argv.push_back("\xff\xfe bad");
  EXPECT_NO_THROW((void)to_json(odd).dump());
}

TEST(ImageH5dump, StockToolReadsTheImage) {
  if (::access("/usr/bin/h5dump", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/h5dump";
  TempFile tmp("h5dump");
  write_image(tmp.path);
  std::string cmd = "/usr/bin/h5dump -H " + tmp.path + " >/dev/null 2>&1 && "
                    "/usr/bin/h5dump -d /memory/regions -d /threads/info -A " + tmp.path +
                    " >/dev/null 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  // Since schema 1.3 the chunk streams carry the zstd filter (32015): their data needs the
  // HDF5 zstd plugin, which Debian 12 does not package; headers and every table still read.
  std::string tables = "/usr/bin/h5dump -d /process/argv -d /memory/page_runs -d /memory/pages_xxh3 "
                       "-d /threads/regs " + tmp.path + " >/dev/null 2>&1";
  EXPECT_EQ(std::system(tables.c_str()), 0);
}

}  // namespace
}  // namespace ferry::image
