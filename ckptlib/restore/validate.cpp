// SPDX-License-Identifier: Apache-2.0
// validate_for_restore: every check that can refuse an image, run before restore creates
// anything. Cheap checks first, content hashes next, chunk checksums (verify_all) last.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

#include "arch/x86_64/regs.hpp"
#include "arch/x86_64/xsave.hpp"
#include "ferry/common/hash.hpp"
#include "restore/address_plan.hpp"
#include "restore/restore.hpp"
#include "restore/validate_detail.hpp"

namespace ferry::restore {

using image::FdKind;
using image::RegionKind;

namespace {

const char* const kXfeatureNames[] = {
    "x87",          "SSE",        "AVX",       "MPX bounds", "MPX CSR",    "AVX-512 opmask",
    "AVX-512 ZMM_Hi256", "AVX-512 Hi16_ZMM", "PT", "PKRU", "PASID", "CET user", "CET supervisor",
    "HDC", "UINTR", "LBR", "HWP", "AMX TILECFG", "AMX TILEDATA", "APX"};

std::string xfeature_names(uint64_t mask) {
  std::string out;
  for (unsigned i = 0; i < 64; ++i) {
    if (!(mask & (uint64_t{1} << i))) continue;
    if (!out.empty()) out += ", ";
    if (i < std::size(kXfeatureNames)) out += kXfeatureNames[i];
    else out += "component " + std::to_string(i);
    out += " (bit " + std::to_string(i) + ")";
  }
  return out;
}

// Content hashes of files, keyed by identity, kept for the whole run of the process so that
// libc and friends are hashed once however many images are validated.
std::mutex g_hash_mu;
std::map<std::tuple<uint64_t, uint64_t, uint64_t, int64_t>, std::string> g_hash_cache;

int64_t mtime_ns(const struct stat& st) {
  return int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
}

Result<void> check_header(const image::ProcessImage& img) {
  const auto& h = img.header;
  if (h.abi != "x86_64")
    return fail(errc::image_foreign, "check abi: image is for '" + h.abi +
                                         "', this restorer handles x86_64 processes only");
  if (h.schema_version.substr(0, h.schema_version.find('.')) != "1")
    return fail(errc::image_version, "check schema version: image has " + h.schema_version +
                                         ", this build reads 1.x");
  if (h.record_kinds & ~image::kKnownRecordKinds)
    return fail(errc::image_version, "check record kinds: image has kinds " +
                                         hex(h.record_kinds & ~image::kKnownRecordKinds) +
                                         " this build does not know");
  long page = ::sysconf(_SC_PAGESIZE);
  if (h.page_size != static_cast<uint64_t>(page))
    return fail(errc::image_foreign, "check page size: image has " + std::to_string(h.page_size) +
                                         ", this host " + std::to_string(page));
  return {};
}

Result<void> check_threads(const image::ProcessImage& img) {
  if (img.threads.empty())
    return fail(errc::image_corrupt, "check threads: the image has no thread");
  // A restore recreates every thread with its recorded id (clone3 set_tid): ids must be
  // valid and distinct. pid_max is checked where the ids are created (a restore host may
  // have another limit).
  std::set<int32_t> ids;
  for (const auto& t : img.threads) {
    if (t.tid <= 0 || !ids.insert(t.tid).second)
      return fail(errc::image_corrupt, "check thread " + std::to_string(t.tid) +
                                           ": thread id is not positive or appears twice");
    if (t.regs[arch::kCs] != arch::kUserCs64)
      return fail(errc::image_foreign, "check thread " + std::to_string(t.tid) + ": code segment " +
                                           hex(t.regs[arch::kCs]) + " is not 64-bit user mode");
    if (t.xsave.size() < arch::kXsaveMinSize || t.xsave.size() != img.header.xsave_size)
      return fail(errc::image_corrupt, "check thread " + std::to_string(t.tid) + ": XSAVE area of " +
                                           std::to_string(t.xsave.size()) + " bytes, header says " +
                                           std::to_string(img.header.xsave_size));
  }
  return {};
}

Result<void> check_regions(const image::ProcessImage& img, uint64_t page) {
  uint64_t prev_end = 0;
  for (size_t i = 0; i < img.regions.size(); ++i) {
    const auto& r = img.regions[i];
    std::string what = "check region " + hex(r.start) + "-" + hex(r.end) + " (" + r.name + ")";
    if (r.kind == RegionKind::vsyscall) continue;  // fixed by the kernel above TASK_SIZE
    if (static_cast<uint32_t>(r.kind) > static_cast<uint32_t>(RegionKind::vsyscall))
      return fail(errc::image_corrupt, what + ": unknown kind " + std::to_string(static_cast<uint32_t>(r.kind)));
    if (r.start % page || r.end % page || r.start >= r.end)
      return fail(errc::image_corrupt, what + ": not a page-aligned non-empty range");
    if (r.start < kMinPlanAddr / 16 || r.end > kTaskSize)
      return fail(errc::image_corrupt, what + ": not a canonical user address range");
    if (r.start < prev_end)
      return fail(errc::image_corrupt, what + ": overlaps or is out of order with the previous region");
    prev_end = r.end;
    if (r.prot & ~0x7u) return fail(errc::image_corrupt, what + ": bad protection " + hex(r.prot));
    bool file_kind = r.kind == RegionKind::file_private || r.kind == RegionKind::file_shared;
    if (file_kind && (r.mapped_file < 0 || static_cast<size_t>(r.mapped_file) >= img.mapped_files.size()))
      return fail(errc::image_corrupt, what + ": no mapped-file record");
    bool blob_kind = r.kind == RegionKind::shm_shared || r.kind == RegionKind::memfd_shared;
    if (blob_kind && (r.blob < 0 || static_cast<size_t>(r.blob) >= img.blobs.size()))
      return fail(errc::image_corrupt, what + ": no blob holding its content");
    if (blob_kind && img.blobs[static_cast<size_t>(r.blob)].size < r.pgoff + (r.end - r.start))
      return fail(errc::image_corrupt, what + ": its blob is shorter than the mapping");
  }
  return {};
}

Result<void> check_vdso(const image::ProcessImage& img) {
  VdsoTriple iv = image_vdso(img.regions);
  if (!iv.present()) return {};  // nothing to move; the live one is unmapped at restore
  FERRY_TRY(maps, read_maps(0));
  VdsoTriple lv = live_vdso(maps);
  if (!lv.present()) return fail(errc::vdso_mismatch, "check vdso: this process has no [vdso]");
  auto sz = [](const Range& r) { return hex(r.size()); };
  if (lv.vvar.size() != iv.vvar.size() || lv.vvar_vclock.size() != iv.vvar_vclock.size() ||
      lv.vdso.size() != iv.vdso.size())
    return fail(errc::vdso_mismatch, "check vdso: sizes vvar/vvar_vclock/vdso are " + sz(lv.vvar) +
                                         "/" + sz(lv.vvar_vclock) + "/" + sz(lv.vdso) +
                                         " here but " + sz(iv.vvar) + "/" + sz(iv.vvar_vclock) +
                                         "/" + sz(iv.vdso) + " in the image");
  auto rel = [](const VdsoTriple& t, const Range& r) { return r.size() ? r.start - t.span().start : 0; };
  if (rel(lv, lv.vvar) != rel(iv, iv.vvar) || rel(lv, lv.vvar_vclock) != rel(iv, iv.vvar_vclock) ||
      rel(lv, lv.vdso) != rel(iv, iv.vdso))
    return fail(errc::vdso_mismatch, "check vdso: the order of [vvar] [vvar_vclock] [vdso] differs from the image's");
  if (img.header.vdso_hash.empty())
    return fail(errc::vdso_mismatch, "check vdso: the image records no vdso hash");
  std::string live_hash = hash::xxh3_128_hex(
      {reinterpret_cast<const std::byte*>(lv.vdso.start), static_cast<size_t>(lv.vdso.size())});
  if (live_hash != img.header.vdso_hash)
    return fail(errc::vdso_mismatch, "check vdso: this kernel's [vdso] (hash " + live_hash +
                                         ") differs from the image's (" + img.header.vdso_hash +
                                         "); restore on a host running the same kernel build");
  return {};
}

Result<void> check_fds(const image::ProcessImage& img) {
  struct rlimit nofile {};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  std::set<int> seen;
  for (const auto& f : img.fds) {
    std::string what = "check fd " + std::to_string(f.fd) + " (" + f.file.path + ")";
    if (f.fd < 0 || !seen.insert(f.fd).second)
      return fail(errc::image_corrupt, what + ": negative or duplicate fd number");
    if (static_cast<rlim_t>(f.fd) >= nofile.rlim_max)
      return fail(errc::address_conflict, what + ": above this host's RLIMIT_NOFILE hard limit " +
                                              std::to_string(nofile.rlim_max));
    bool needs_blob = f.kind == FdKind::deleted || f.kind == FdKind::memfd;
    if (needs_blob && (f.blob < 0 || static_cast<size_t>(f.blob) >= img.blobs.size()))
      return fail(errc::image_corrupt, what + ": no blob holding its content");
    switch (f.kind) {
      case FdKind::inherit:
        if (f.fd > 2) return fail(errc::image_corrupt, what + ": only fds 0-2 can be inherited");
        break;
      case FdKind::regular: {
        FERRY_TRY_VOID(check_open_file(f));
        break;
      }
      case FdKind::directory:
      case FdKind::devnull: {
        struct stat st {};
        if (::stat(f.file.path.c_str(), &st) != 0)
          return fail(errc::file_changed, what + ": cannot reopen it: " + std::strerror(errno));
        bool ok = f.kind == FdKind::directory ? S_ISDIR(st.st_mode) : S_ISCHR(st.st_mode);
        if (!ok) return fail(errc::file_changed, what + ": no longer a " +
                                                     (f.kind == FdKind::directory ? "directory" : "device"));
        break;
      }
      case FdKind::deleted:
      case FdKind::memfd:
        break;
      default:
        return fail(errc::unsupported, what + ": fd kind " +
                                           std::to_string(static_cast<uint32_t>(f.kind)) +
                                           " is not restorable by this build");
    }
  }
  return {};
}

Result<void> check_mapped_files(const image::ProcessImage& img) {
  // A file mapped privately or read-only must be identical; a writable MAP_SHARED file IS the
  // state (changes after the checkpoint are expected), so it only has to exist.
  std::vector<int> level(img.mapped_files.size(), 0);  // 0 unused, 1 exists, 2 identical
  for (const auto& r : img.regions) {
    if (r.mapped_file < 0) continue;
    int need = (r.kind == RegionKind::file_shared && (r.prot & 2)) ? 1 : 2;
    auto& l = level[static_cast<size_t>(r.mapped_file)];
    l = std::max(l, need);
  }
  for (size_t i = 0; i < img.mapped_files.size(); ++i) {
    if (level[i] == 0) continue;
    FERRY_TRY_VOID(check_file_identity(img.mapped_files[i], level[i] == 2, "mapped file"));
  }
  return {};
}

}  // namespace

Result<void> check_file_identity(const image::FileIdentity& id, bool identical, const std::string& role) {
  std::string what = "check " + role + " " + id.path;
  struct stat st {};
  if (::stat(id.path.c_str(), &st) != 0)
    return fail(errc::file_changed, what + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail(errc::file_changed, what + ": no longer a regular file");
  if (!identical) return {};
  if (static_cast<uint64_t>(st.st_size) != id.size)
    return fail(errc::file_changed, what + ": size is " + std::to_string(st.st_size) +
                                        ", was " + std::to_string(id.size) + " at checkpoint");
  if (mtime_ns(st) != id.mtime_ns)
    return fail(errc::file_changed, what + ": modified since the checkpoint (mtime " +
                                        std::to_string(mtime_ns(st)) + " ns, was " +
                                        std::to_string(id.mtime_ns) + ")");
  if (id.hash.empty()) return {};
  auto key = std::make_tuple(uint64_t{st.st_dev}, uint64_t{st.st_ino}, uint64_t(st.st_size), mtime_ns(st));
  std::string h;
  {
    std::lock_guard lk(g_hash_mu);
    if (auto it = g_hash_cache.find(key); it != g_hash_cache.end()) h = it->second;
  }
  if (h.empty()) {
    auto r = hash::file_xxh3_128(id.path);
    if (!r) return fail(r.error().wrap(what));
    h = *r;
    std::lock_guard lk(g_hash_mu);
    g_hash_cache[key] = h;
  }
  if (h != id.hash)
    return fail(errc::file_changed, what + ": content differs from the checkpoint (hash " + h +
                                        ", was " + id.hash + ")");
  return {};
}

Result<void> check_open_file(const image::FdRecord& f) {
  std::string what = "check open file fd " + std::to_string(f.fd) + " " + f.file.path;
  struct stat st {};
  if (::stat(f.file.path.c_str(), &st) != 0)
    return fail(errc::file_changed, what + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail(errc::file_changed, what + ": no longer a regular file");
  bool writable = (f.flags & O_ACCMODE) != O_RDONLY;
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (writable) {
    // Output written after the checkpoint is rolled back by truncation at restore; a file
    // that became SHORTER lost data the restored program already counts on.
    if (size < f.file.size)
      return fail(errc::file_changed, what + ": is " + std::to_string(size) +
                                          " bytes, shorter than its " + std::to_string(f.file.size) +
                                          " bytes at checkpoint");
    return {};
  }
  if (size != f.file.size)
    return fail(errc::file_changed, what + ": size is " + std::to_string(size) + ", was " +
                                        std::to_string(f.file.size) + " at checkpoint");
  if (f.file.mtime_ns != 0 && mtime_ns(st) != f.file.mtime_ns)
    return fail(errc::file_changed, what + ": modified since the checkpoint");
  return {};
}

Result<void> check_cpu(const image::ImageHeader& h, const std::vector<image::Thread>& threads,
                       uint64_t host_xcr0, uint32_t host_xsave_size) {
  uint64_t used = h.xfeatures;
  for (const auto& t : threads) used |= arch::xstate_bv(t.xsave);
  if (uint64_t missing = used & ~host_xcr0)
    return fail(errc::cpu_incompatible, "check cpu: the image uses XSAVE components this CPU lacks: " +
                                            xfeature_names(missing) + " (image " + hex(used) +
                                            ", this CPU's XCR0 " + hex(host_xcr0) + ")");
  if (h.xsave_size > host_xsave_size)
    return fail(errc::cpu_incompatible, "check cpu: the image's XSAVE area is " +
                                            std::to_string(h.xsave_size) + " bytes, this CPU's " +
                                            std::to_string(host_xsave_size));
  return {};
}

Result<void> validate_for_restore(image::ImageSource& src, const RestoreOptions& opt) {
  const auto& img = src.image();
  uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  FERRY_TRY_VOID(check_header(img));
  FERRY_TRY_VOID(check_cpu(img.header, img.threads, arch::host_xcr0(), arch::xsave_size()));
  FERRY_TRY_VOID(check_threads(img));
  FERRY_TRY_VOID(check_regions(img, page));
  FERRY_TRY(writes, plan_page_writes(img.page_runs, img.regions, {}, page));
  (void)writes;
  FERRY_TRY_VOID(check_vdso(img));
  {
    FERRY_TRY(maps, read_maps(0));
    FERRY_TRY(plan, plan_addresses(img.regions, maps, page));
    (void)plan;
  }
  if (img.self_checkpoint && img.self_checkpoint->flag_addr % 4 != 0)
    return fail(errc::image_corrupt, "check self-checkpoint flag: misaligned address " +
                                         hex(img.self_checkpoint->flag_addr));
  if (!img.process.cwd.empty()) {
    struct stat st {};
    if (::stat(img.process.cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return fail(errc::file_changed, "check working directory " + img.process.cwd +
                                          ": no longer a directory");
  }
  FERRY_TRY_VOID(check_fds(img));
  FERRY_TRY_VOID(check_mapped_files(img));
  // A named (not deleted) /dev/shm file is rewritten from its blob while the regions are
  // built, before the pages are read: its image is checked in full here even when the restore
  // checks chunks while filling.
  bool named_shm = std::any_of(img.regions.begin(), img.regions.end(), [](const image::Region& r) {
    return r.kind == RegionKind::shm_shared && r.name.find(" (deleted)") == std::string::npos;
  });
  if (opt.verify_checksums && (!opt.checksums_while_filling || named_shm)) {
    if (auto r = src.verify_all(); !r) return fail(r.error().wrap("check image checksums"));
  }
  return {};
}

}  // namespace ferry::restore
