// SPDX-License-Identifier: Apache-2.0
// Remote-syscall steps of the pre-PONR build: ChildBuilder primitives, building every image
// region at its planned address, and copying page bytes into the child.
// Page bytes: the page runs are split at region boundaries (plan_page_writes); regions dense
// enough to hold a whole 2 MiB window get MADV_HUGEPAGE first when asked (plan_huge_regions,
// RestoreOptions::huge_pages); then the
// bytes move in batches of kCopyBatch: read from the image (each chunk checked against its
// checksum) into one buffer, written with one process_vm_writev carrying one remote iovec per
// piece, which also faults the pages in. Nothing is done per page.
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

namespace {

// Collects page writes into one buffer of up to kCopyBatch bytes and moves it with one
// process_vm_writev (one local iovec, one remote iovec per piece, at most kMaxIov).
class PageFiller {
public:
  PageFiller(ChildBuilder& b, image::ImageSource& src) : b_(b), src_(src), buf_(kCopyBatch) {}

  Result<void> add(uint64_t image_addr, uint64_t child_addr, uint64_t len) {
    while (len > 0) {
      if (used_ == buf_.size() || pieces_.size() == kMaxIov) FERRY_TRY_VOID(flush());
      size_t n = static_cast<size_t>(std::min<uint64_t>(len, buf_.size() - used_));
      std::span<std::byte> into(buf_.data() + used_, n);
      if (auto r = src_.read_pages(image_addr, into); !r)
        return fail(r.error().wrap("read pages at " + hex(image_addr)));
      pieces_.push_back({image_addr, child_addr, n});
      used_ += n;
      image_addr += n;
      child_addr += n;
      len -= n;
    }
    return {};
  }

  Result<void> flush() {
    if (pieces_.empty()) return {};
    std::vector<iovec> remote(pieces_.size());
    for (size_t i = 0; i < pieces_.size(); ++i)
      remote[i] = {reinterpret_cast<void*>(pieces_[i].child), pieces_[i].len};
    iovec local{buf_.data(), used_};
    ssize_t n;
    do {
      n = ::process_vm_writev(b_.pid(), &local, 1, remote.data(), remote.size(), 0);
    } while (n < 0 && errno == EINTR);
    size_t done = n > 0 ? static_cast<size_t>(n) : 0;
    if (done < used_) {
      // A short write: finish piece by piece (Tracee::write_memory falls back to /proc/PID/mem).
      size_t pos = 0;
      for (const auto& p : pieces_) {
        if (pos + p.len > done) {
          size_t skip = done > pos ? done - pos : 0;
          std::span<const std::byte> rest(buf_.data() + pos + skip, p.len - skip);
          if (auto r = b_.tracee().write_memory(p.child + skip, rest); !r)
            return fail(r.error().wrap("write pages of " + hex(p.image + skip)));
        }
        pos += p.len;
      }
    }
    pieces_.clear();
    used_ = 0;
    return {};
  }

private:
  static constexpr size_t kMaxIov = 1024;  // IOV_MAX
  struct Piece {
    uint64_t image, child, len;
  };
  ChildBuilder& b_;
  image::ImageSource& src_;
  std::vector<std::byte> buf_;
  std::vector<Piece> pieces_;
  size_t used_ = 0;
};

}  // namespace

Result<void> write_pages(ChildBuilder& b, image::ImageSource& src, const AddressPlan& plan,
                         uint64_t page, const RestoreOptions& opt) {
  const auto& img = src.image();
  FERRY_TRY(writes, plan_page_writes(img.page_runs, img.regions, plan.build_addr, page));
  // Dense anonymous regions get transparent huge pages before any byte lands in them, so the
  // kernel allocates 2 MiB pages as process_vm_writev faults them in. Advice only: a kernel
  // with THP disabled refuses it and the region is filled in small pages.
  size_t huge = 0;
  const char* env = std::getenv("FERRY_RESTORE_HUGE_PAGES");
  const bool want_huge = opt.huge_pages || (env && std::strcmp(env, "1") == 0);
  for (size_t i : want_huge ? plan_huge_regions(img.regions, writes, plan.staged) : std::vector<size_t>{}) {
    const auto& r = img.regions[i];
    auto ok = b.call("advise huge pages for " + hex(r.start), SYS_madvise,
                     {plan.build_addr[i], r.end - r.start, MADV_HUGEPAGE});
    huge += ok.has_value();
  }
  PageFiller filler(b, src);
  uint64_t total = 0;
  for (const auto& w : writes) {
    FERRY_TRY_VOID(filler.add(w.image_addr, w.child_addr, w.len));
    total += w.len;
  }
  FERRY_TRY_VOID(filler.flush());
  if (opt.log)
    opt.log("restore: wrote " + std::to_string(total) + " bytes of pages in " +
            std::to_string(writes.size()) + " pieces; " + std::to_string(huge) +
            " regions in huge pages");
  return {};
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
