// SPDX-License-Identifier: Apache-2.0
// Remote-syscall steps of the pre-PONR build: ChildBuilder primitives and building every image
// region at its planned address. The page bytes are copied in by page_filler.cpp.
#include "restore/child_builder.hpp"

#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ferry/common/fs.hpp"
#include "ferry/common/unique_fd.hpp"
#include "restore/address_plan.hpp"
#include "restore/steps.hpp"

namespace ferry::restore {

using image::RegionKind;

ChildBuilder::ChildBuilder(ptrace::Tracee& t, uint64_t gadget, uint64_t page)
    : t_(t), gadget_(gadget), scratch_(gadget + page), page_(page) {}

Result<uint64_t> ChildBuilder::call(const std::string& what, long nr,
                                    std::initializer_list<uint64_t> args) {
  auto r = t_.syscall(gadget_, nr, args);
  if (!r) return fail(r.error().wrap(what));
  if (*r < 0 && *r > -4096) return fail_errno(what, static_cast<int>(-*r));
  return static_cast<uint64_t>(*r);
}

Result<uint64_t> ChildBuilder::put(std::span<const std::byte> data, uint64_t off) {
  if (off + data.size() > page_)
    return fail(errc::unsupported, "copy syscall argument: " + std::to_string(data.size()) +
                                       " bytes do not fit the scratch page");
  FERRY_TRY_VOID(t_.write_memory(scratch_ + off, data));
  return scratch_ + off;
}

Result<uint64_t> ChildBuilder::put_string(const std::string& s, uint64_t off) {
  std::vector<std::byte> buf(s.size() + 1);
  std::memcpy(buf.data(), s.data(), s.size());
  return put(buf, off);
}

Result<int> ChildBuilder::open(const std::string& path, int flags, int mode) {
  FERRY_TRY(p, put_string(path));
  FERRY_TRY(fd, call("open " + path, SYS_openat,
                     {static_cast<uint64_t>(AT_FDCWD), p, static_cast<uint64_t>(flags | O_CLOEXEC),
                      static_cast<uint64_t>(mode)}));
  return static_cast<int>(fd);
}

Result<void> ChildBuilder::close(int fd) {
  FERRY_TRY_VOID(call("close fd " + std::to_string(fd), SYS_close, {static_cast<uint64_t>(fd)}));
  return {};
}

Result<int> ChildBuilder::park(int fd, const std::string& what) {
  auto moved = call("park fd of " + what, SYS_fcntl,
                    {static_cast<uint64_t>(fd), F_DUPFD_CLOEXEC, static_cast<uint64_t>(temp_base_)});
  (void)close(fd);
  if (!moved) return fail(moved.error());
  temps_.push_back(static_cast<int>(*moved));
  return static_cast<int>(*moved);
}

Result<void> ChildBuilder::close_temps() {
  for (int fd : temps_) FERRY_TRY_VOID(close(fd));
  temps_.clear();
  blob_fds_.clear();
  return {};
}

Result<void> ChildBuilder::fill_from_blob(image::ImageSource& src, uint32_t blob, int fd,
                                          const std::string& what) {
  const auto& blobs = src.image().blobs;
  if (blob >= blobs.size()) return fail(errc::image_corrupt, "fill " + what + ": no blob " + std::to_string(blob));
  uint64_t size = blobs[blob].size;
  FERRY_TRY_VOID(call("truncate " + what, SYS_ftruncate, {static_cast<uint64_t>(fd), size}));
  std::string path = "/proc/" + std::to_string(pid()) + "/fd/" + std::to_string(fd);
  UniqueFd out(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!out) return fail_errno("fill " + what + ": open " + path);
  std::vector<std::byte> buf(static_cast<size_t>(std::min<uint64_t>(size, kCopyBatch)));
  for (uint64_t off = 0; off < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(size - off, buf.size()));
    std::span<std::byte> chunk(buf.data(), n);
    if (auto r = src.read_blob(blob, off, chunk); !r) return fail(r.error().wrap("fill " + what));
    size_t done = 0;
    while (done < n) {
      ssize_t w = ::pwrite(out.get(), chunk.data() + done, n - done, static_cast<off_t>(off + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return fail_errno("fill " + what + ": write " + path, w < 0 ? errno : EIO);
      done += static_cast<size_t>(w);
    }
    off += n;
  }
  return {};
}

Result<int> ChildBuilder::materialize_blob(image::ImageSource& src, uint32_t blob,
                                           const std::string& dir, const std::string& name) {
  std::string what = "blob " + std::to_string(blob) + " (" + name + ")";
  int fd = -1;
  if (!dir.empty()) {
    auto r = open(dir, O_TMPFILE | O_RDWR, 0600);
    if (r) fd = *r;
  }
  if (fd < 0) {
    std::string nm = name.substr(0, 240);  // memfd names are limited to 249 bytes
    FERRY_TRY(p, put_string(nm));
    FERRY_TRY(m, call("memfd_create for " + what, SYS_memfd_create, {p, MFD_CLOEXEC}));
    fd = static_cast<int>(m);
  }
  FERRY_TRY(parked, park(fd, what));
  FERRY_TRY_VOID(fill_from_blob(src, blob, parked, what));
  return parked;
}

namespace {

std::string strip_deleted(std::string s) {
  constexpr std::string_view kDel = " (deleted)";
  if (s.size() >= kDel.size() && s.compare(s.size() - kDel.size(), kDel.size(), kDel) == 0)
    s.resize(s.size() - kDel.size());
  return s;
}

// "/memfd:ring (deleted)" -> "ring"
std::string memfd_name(const std::string& s) {
  std::string n = strip_deleted(s);
  if (n.rfind("/memfd:", 0) == 0) return n.substr(7);
  if (n.rfind("memfd:", 0) == 0) return n.substr(6);
  return n.empty() ? "ferry" : n;
}

// The child fd holding a shm/memfd region's backing object, created once per blob.
Result<int> region_object(ChildBuilder& b, image::ImageSource& src, const image::Region& r) {
  uint32_t blob = static_cast<uint32_t>(r.blob);
  if (auto it = b.blob_fds().find(blob); it != b.blob_fds().end()) return it->second;
  int fd = -1;
  if (r.kind == RegionKind::memfd_shared) {
    FERRY_TRY(f, b.materialize_blob(src, blob, "", memfd_name(r.name)));
    fd = f;
  } else {
    std::string path = strip_deleted(r.name);
    if (path.size() != r.name.size()) {  // the shm file was unlinked: keep it unlinked
      FERRY_TRY(f, b.materialize_blob(src, blob, fs::dirname(path), fs::basename(path)));
      fd = f;
    } else {
      FERRY_TRY(f, b.open(path, O_RDWR | O_CREAT, 0600));
      FERRY_TRY(parked, b.park(f, path));
      FERRY_TRY_VOID(b.fill_from_blob(src, blob, parked, path));
      fd = parked;
    }
  }
  b.blob_fds()[blob] = fd;
  return fd;
}

}  // namespace

Result<void> build_regions(ChildBuilder& b, image::ImageSource& src, const AddressPlan& plan,
                           const RestoreOptions& opt) {
  const auto& img = src.image();
  std::map<std::string, int> file_fds;  // path|mode -> child fd, for libraries mapped 4-5 times
  auto file_fd = [&](const std::string& path, int flags) -> Result<int> {
    std::string key = path + "|" + std::to_string(flags);
    if (auto it = file_fds.find(key); it != file_fds.end()) return it->second;
    FERRY_TRY(fd, b.open(path, flags));
    file_fds[key] = fd;
    return fd;
  };
  auto result = [&]() -> Result<void> {
    for (size_t i = 0; i < img.regions.size(); ++i) {
      const auto& r = img.regions[i];
      if (is_special(r.kind)) continue;
      uint64_t at = plan.build_addr[i], len = r.end - r.start;
      std::string what = "map region " + hex(r.start) + "-" + hex(r.end) +
                         (r.name.empty() ? "" : " (" + r.name + ")") +
                         (plan.staged[i] ? " staged at " + hex(at) : "");
      uint64_t prot = r.prot | PROT_READ | PROT_WRITE;
      uint64_t fixed = MAP_FIXED_NOREPLACE;
      uint64_t flags = 0;
      int64_t fd = -1;
      uint64_t off = 0;
      switch (r.kind) {
        case RegionKind::anon_private:
        case RegionKind::heap:
        case RegionKind::stack:
          flags = MAP_PRIVATE | MAP_ANONYMOUS;
          break;
        case RegionKind::anon_shared:
          flags = MAP_SHARED | MAP_ANONYMOUS;
          break;
        case RegionKind::file_private: {
          FERRY_TRY(f, file_fd(img.mapped_files[static_cast<size_t>(r.mapped_file)].path, O_RDONLY));
          fd = f;
          flags = MAP_PRIVATE;
          off = r.pgoff;
          break;
        }
        case RegionKind::file_shared: {
          bool w = r.prot & PROT_WRITE;
          FERRY_TRY(f, file_fd(img.mapped_files[static_cast<size_t>(r.mapped_file)].path,
                               w ? O_RDWR : O_RDONLY));
          fd = f;
          flags = MAP_SHARED;
          off = r.pgoff;
          prot = r.prot | PROT_READ;  // the file is the state: no page bytes to write
          break;
        }
        case RegionKind::shm_shared:
        case RegionKind::memfd_shared: {
          FERRY_TRY(f, region_object(b, src, r));
          fd = f;
          flags = MAP_SHARED;
          off = r.pgoff;
          break;
        }
        default:
          continue;
      }
      uint64_t got = 0;
      if (r.kind == RegionKind::stack) {
        auto g = b.call(what, SYS_mmap, {at, len, prot, flags | fixed | MAP_GROWSDOWN, ~uint64_t{0}, 0});
        if (g) got = *g;
      }
      if (got == 0) {
        FERRY_TRY(g, b.call(what, SYS_mmap, {at, len, prot, flags | fixed, static_cast<uint64_t>(fd), off}));
        got = g;
      }
      if (got != at)  // kernels before 4.17 treat MAP_FIXED_NOREPLACE as a hint
        return fail(errc::address_conflict, what + ": kernel placed it at " + hex(got));
    }
    if (opt.log) {
      size_t staged = 0;
      for (bool st : plan.staged) staged += st;
      opt.log("restore: built " + std::to_string(img.regions.size()) + " regions (" +
              std::to_string(staged) + " staged)");
    }
    return {};
  }();
  for (const auto& [key, fd] : file_fds) (void)b.close(fd);
  return result;
}

// Address of image address `addr` in the child before the point of no return.
uint64_t child_address(const image::ProcessImage& img, const AddressPlan& plan, uint64_t addr) {
  for (size_t i = 0; i < img.regions.size(); ++i) {
    const auto& r = img.regions[i];
    if (addr >= r.start && addr < r.end && plan.build_addr[i] != 0)
      return plan.build_addr[i] + (addr - r.start);
  }
  return 0;
}

}  // namespace ferry::restore
