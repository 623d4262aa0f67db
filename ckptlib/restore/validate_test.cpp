// SPDX-License-Identifier: Apache-2.0
// Validation refusals on a MemoryImage built from this test process's own vDSO and a temp
// file: each test breaks one thing and expects the matching errc and a message naming it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "arch/x86_64/xsave.hpp"
#include "ferry/common/hash.hpp"
#include "ferry/image/memory_image.hpp"
#include "restore/address_plan.hpp"
#include "restore/restore.hpp"
#include "restore/validate_detail.hpp"

namespace ferry::restore {
namespace {

using image::Region;
using image::RegionKind;

class ValidateTest : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-validate-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    lib_ = dir_ + "/libfake.so";
    write(lib_, std::string(8192, 'L'));

    auto& img = mem_.mutable_image();
    img.header.schema_version = image::kSchemaVersion;
    img.header.abi = "x86_64";
    img.header.page_size = 4096;
    img.header.xfeatures = 0x3;
    img.header.xsave_size = arch::kXsaveMinSize;
    image::Thread t;
    t.tid = 1;
    t.regs[17] = 0x33;  // cs
    t.xsave.assign(arch::kXsaveMinSize, 0);
    t.xsave[512] = 0x3;  // xstate_bv: x87|SSE
    img.threads.push_back(t);
    img.process.cwd = dir_;

    auto maps = read_maps(0);
    ASSERT_TRUE(maps);
    VdsoTriple v = live_vdso(*maps);
    ASSERT_TRUE(v.present());
    add_region(v.vvar, RegionKind::vvar);
    if (v.vvar_vclock.size()) add_region(v.vvar_vclock, RegionKind::vvar_vclock);
    add_region(v.vdso, RegionKind::vdso);
    img.header.vdso_hash = hash::xxh3_128_hex(
        {reinterpret_cast<const std::byte*>(v.vdso.start), static_cast<size_t>(v.vdso.size())});

    // A private file mapping of lib_ at an address free here.
    image::FileIdentity id = identity(lib_);
    img.mapped_files.push_back(id);
    Region r;
    r.start = 0x100000000;
    r.end = r.start + 8192;
    r.prot = 5;
    r.flags = 2;
    r.kind = RegionKind::file_private;
    r.mapped_file = 0;
    r.name = lib_;
    img.regions.insert(img.regions.begin(), r);
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    (void)std::system(cmd.c_str());
  }

  static void write(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  }
  static image::FileIdentity identity(const std::string& path) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    image::FileIdentity id;
    id.path = path;
    id.dev = st.st_dev;
    id.ino = st.st_ino;
    id.size = static_cast<uint64_t>(st.st_size);
    id.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    id.hash = *hash::file_xxh3_128(path);
    return id;
  }
  void add_region(Range range, RegionKind kind) {
    Region r;
    r.start = range.start;
    r.end = range.end;
    r.prot = 1;
    r.kind = kind;
    mem_.mutable_image().regions.push_back(r);
  }
  Error refusal() {
    RestoreOptions opt;
    auto r = validate_for_restore(mem_, opt);
    EXPECT_FALSE(r) << "image was accepted";
    return r ? Error() : r.error();
  }

  std::string dir_, lib_;
  image::MemoryImage mem_;
};

TEST_F(ValidateTest, AcceptsConsistentImage) {
  RestoreOptions opt;
  auto r = validate_for_restore(mem_, opt);
  EXPECT_TRUE(r) << r.error().message();
}

TEST_F(ValidateTest, RefusesForeignAbi) {
  mem_.mutable_image().header.abi = "i386";
  Error e = refusal();
  EXPECT_TRUE(e.is(errc::image_foreign)) << e.message();
  EXPECT_NE(e.message().find("i386"), std::string::npos);
}

TEST_F(ValidateTest, RefusesXsaveComponentThisCpuLacks) {
  uint64_t xcr0 = arch::host_xcr0();
  unsigned bit = 2;
  while (bit < 20 && (xcr0 & (uint64_t{1} << bit))) ++bit;
  ASSERT_LT(bit, 20u);
  mem_.mutable_image().header.xfeatures |= uint64_t{1} << bit;
  Error e = refusal();
  EXPECT_TRUE(e.is(errc::cpu_incompatible)) << e.message();
  EXPECT_NE(e.message().find("bit " + std::to_string(bit)), std::string::npos) << e.message();
}

TEST_F(ValidateTest, CpuCheckNamesMissingComponents) {
  image::ImageHeader h;
  h.xfeatures = 0xe7;
  h.xsave_size = 2432;
  auto r = check_cpu(h, {}, /*host_xcr0=*/0x7, /*host_xsave_size=*/832);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(errc::cpu_incompatible));
  EXPECT_NE(r.error().message().find("AVX-512 opmask"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("Hi16_ZMM"), std::string::npos);
  h.xfeatures = 0x7;
  auto big = check_cpu(h, {}, 0x7, 832);
  ASSERT_FALSE(big);  // area larger than this CPU's
  EXPECT_TRUE(check_cpu(h, {}, 0xe7, 2432));
}

TEST_F(ValidateTest, RefusesVdsoHashMismatch) {
  mem_.mutable_image().header.vdso_hash = "00000000000000000000000000000000";
  Error e = refusal();
  EXPECT_TRUE(e.is(errc::vdso_mismatch)) << e.message();
}

TEST_F(ValidateTest, RefusesVdsoSizeMismatch) {
  for (auto& r : mem_.mutable_image().regions)
    if (r.kind == RegionKind::vvar) r.start -= 4096;
  Error e = refusal();
  EXPECT_TRUE(e.is(errc::vdso_mismatch)) << e.message();
}

TEST_F(ValidateTest, RefusesChangedMappedFileContent) {
  struct stat st {};
  ::stat(lib_.c_str(), &st);
  write(lib_, std::string(8191, 'L') + "X");  // same size
  timespec times[2] = {st.st_atim, st.st_mtim};  // and same mtime: only the hash can tell
  ASSERT_EQ(::utimensat(AT_FDCWD, lib_.c_str(), times, 0), 0);
  Error e = refusal();
  EXPECT_TRUE(e.is(errc::file_changed)) << e.message();
  EXPECT_NE(e.message().find(lib_), std::string::npos) << e.message();
  EXPECT_NE(e.message().find("content differs"), std::string::npos) << e.message();
}

TEST_F(ValidateTest, RefusesChangedMappedFileSize) {
  write(lib_, "short");
  Error e = refusal();
  EXPECT_TRUE(e.is(errc::file_changed)) << e.message();
  EXPECT_NE(e.message().find(lib_), std::string::npos);
  EXPECT_NE(e.message().find("size"), std::string::npos);
}

TEST_F(ValidateTest, RefusesMissingMappedFile) {
  ::unlink(lib_.c_str());
  Error e = refusal();
  EXPECT_TRUE(e.is(errc::file_changed)) << e.message();
}

TEST_F(ValidateTest, RefusesOverlappingRegions) {
  auto& regs = mem_.mutable_image().regions;
  Region r = regs[0];
  r.kind = RegionKind::anon_private;
  r.start += 4096;
  r.end += 4096;
  regs.insert(regs.begin() + 1, r);
  Error e = refusal();
  EXPECT_TRUE(e.is(errc::image_corrupt)) << e.message();
}

TEST_F(ValidateTest, RefusesPageRunOutsideRegions) {
  std::vector<std::byte> page(4096);
  ASSERT_TRUE(mem_.append_pages(0x300000000, page));
  Error e = refusal();
  EXPECT_TRUE(e.is(errc::image_corrupt)) << e.message();
}

TEST_F(ValidateTest, OpenFilesWritableMayGrowReadOnlyMayNot) {
  std::string out = dir_ + "/out.txt";
  write(out, "0123456789");
  image::FdRecord f;
  f.fd = 3;
  f.kind = image::FdKind::regular;
  f.flags = O_WRONLY;
  f.file = identity(out);
  f.file.size = 5;  // the program wrote 5 more bytes after the checkpoint: fine
  mem_.mutable_image().fds.push_back(f);
  RestoreOptions opt;
  EXPECT_TRUE(validate_for_restore(mem_, opt));
  mem_.mutable_image().fds[0].flags = O_RDONLY;  // a read-only file must be unchanged
  Error e = refusal();
  EXPECT_TRUE(e.is(errc::file_changed)) << e.message();
  EXPECT_NE(e.message().find(out), std::string::npos);
  mem_.mutable_image().fds[0].flags = O_RDWR;
  mem_.mutable_image().fds[0].file.size = 20;  // shorter than at checkpoint: data lost
  e = refusal();
  EXPECT_TRUE(e.is(errc::file_changed)) << e.message();
}

TEST_F(ValidateTest, RefusesDuplicateThreadId) {
  auto& img = mem_.mutable_image();
  img.threads.push_back(img.threads[0]);  // same tid twice: clone3(set_tid) could not do it
  Error e = refusal();
  EXPECT_TRUE(e.is(errc::image_corrupt)) << e.message();
  img.threads[1].tid = img.threads[0].tid + 1;
  EXPECT_TRUE(validate_for_restore(mem_, {})) << "a second thread with its own id is fine";
}

}  // namespace
}  // namespace ferry::restore
