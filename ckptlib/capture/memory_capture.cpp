// SPDX-License-Identifier: Apache-2.0
// Memory side of capture: VMA classification, mapped-file identities, page and blob streaming.
//
// Algorithm:
//   plan:   each /proc/PID/maps entry -> RegionKind and a save policy:
//             [heap] [stack] private anon  -> pages present or swapped
//             private file                 -> only COW'd pages (pagemap bit 61 clear); the rest is
//                                             the file, recorded by identity + XXH3-128 hash
//             shared anon (/dev/zero del.) -> present pages
//             shared tmpfs file / memfd    -> whole backing file as a blob (via map_files)
//             shared regular file          -> identity only (the file is the state)
//             vdso/vvar/vvar_vclock/vsyscall -> recorded, no bytes
//           Unsupported VMAs (SysV shm, devices, deleted files, private memfd) are refused here,
//           before anything is written.
//   stream: for each region to save, pagemap is scanned in blocks into page runs; runs are read
//           with process_vm_readv into an 8 MiB buffer (up to 1024 iovecs per call) and handed
//           to the sink in page-aligned pieces. Pages process_vm_readv cannot read (PROT_NONE
//           with contents) are read through /proc/PID/mem, which reads with FOLL_FORCE.
//           With a snapshot (snapshot.hpp) the regions a fork does not copy (fork_skips) are
//           streamed from the frozen process first, the others later from the snapshot, and
//           those are read with pread of /proc/PID/mem, not process_vm_readv: its pages are
//           shared copy-on-write with the running process, and process_vm_readv pins them,
//           which makes the kernel copy every shared anonymous page into the snapshot first
//           (GUP unshare): a page allocation and copy per page, twice the memory, and half the
//           speed measured on the project VM (1 GiB: 0.95 vs 1.9 GB/s).
//           When the sink offers its buffers (ImageSink::page_buffer: an image file), the
//           snapshot is read in 256 KiB pieces straight into the chunk buffer that is written
//           (no 8 MiB batch buffer and no copy out of it: that memcpy was a quarter of the
//           supervisor's CPU samples in a 1 GiB checkpoint); all-zero pages of a piece are
//           squeezed out by moving the later pages of that piece down (still in the cache).
//           Incremental (capture.hpp IncrementalBasis): in tracked private regions only the
//           pages written since the previous checkpoint (or not held by it) are streamed; the
//           others become references to the earlier image holding them (split_incremental).
//           In anonymous regions (private, heap, stack, shared anon) a page that is all zeros
//           is not handed to the sink: restore leaves it to the kernel's fresh zero-filled
//           memory, exactly as for a page that was never touched (schema 1.3). The test stops
//           at the first non-zero word, so it costs next to nothing on data pages.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <tuple>

#include "capture_internal.hpp"
#include "ferry/common/hash.hpp"
#include "ferry/common/huge_buffer.hpp"
#include "ferry/common/unique_fd.hpp"

namespace ferry::capture::detail {

namespace {

std::string hexaddr(uint64_t a) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(a));
  return b;
}

std::string map_files_path(pid_t pid, const proc::MapEntry& e) {
  char b[96];
  std::snprintf(b, sizeof b, "/proc/%d/map_files/%llx-%llx", pid, static_cast<unsigned long long>(e.start),
                static_cast<unsigned long long>(e.end));
  return b;
}

int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace

Result<std::string> cached_file_hash(const std::string& open_path, uint64_t dev, uint64_t ino,
                                     uint64_t size, int64_t mtime) {
  // Process-wide: repeated checkpoints (and several processes in one agent) hash libc once.
  static std::mutex mu;
  static std::map<std::tuple<uint64_t, uint64_t, uint64_t, int64_t>, std::string> cache;
  auto key = std::make_tuple(dev, ino, size, mtime);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  auto h = hash::file_xxh3_128(open_path);
  if (!h) return fail(h.error().wrap("hash mapped file " + open_path));
  std::lock_guard<std::mutex> lock(mu);
  cache.emplace(key, *h);
  return *h;
}

}  // namespace ferry::capture::detail

namespace ferry::capture {

void prehash_mapped_files(pid_t pid) {
  auto maps = proc::read_maps(pid);
  if (!maps) return;
  for (const auto& m : *maps) {
    if (m.shared || m.deleted || m.anonymous() || m.is_shared_anon() || m.is_memfd() ||
        m.special != proc::Special::none || m.path.empty() || m.path.front() != '/')
      continue;
    std::string open_path = detail::map_files_path(pid, m);
    struct stat st {};
    if (::stat(open_path.c_str(), &st) != 0 || st.st_ino != m.ino || !S_ISREG(st.st_mode)) continue;
    (void)detail::cached_file_hash(open_path, st.st_dev, st.st_ino, static_cast<uint64_t>(st.st_size),
                                   detail::mtime_ns(st));
  }
}

}  // namespace ferry::capture

namespace ferry::capture::detail {

Result<MemoryPlan> plan_memory(pid_t pid, const std::vector<proc::MapEntry>& maps,
                               const std::vector<proc::SmapsEntry>& smaps, BlobTable& blobs) {
  const std::string who = "process " + std::to_string(pid);
  MemoryPlan plan;
  std::map<std::pair<uint64_t, uint64_t>, int32_t> file_index;  // (dev, ino) -> mapped_files
  std::map<uint64_t, uint64_t> anon_bytes;                      // VMA start -> smaps Anonymous
  std::map<uint64_t, bool> not_forked;                          // VMA start -> dc or wf
  for (const auto& s : smaps) {
    anon_bytes[s.start] = s.anonymous;
    not_forked[s.start] = s.dontcopy || s.wipeonfork;
  }

  for (const auto& m : maps) {
    auto refuse = [&](const std::string& why) {
      return fail(errc::unsupported, "checkpoint " + who + ": mapping " + hexaddr(m.start) + "-" +
                                         hexaddr(m.end) + " '" + m.name + "' " + why);
    };
    RegionPlan rp;
    rp.fork_skips = m.shared || not_forked[m.start];
    image::Region& r = rp.region;
    r.start = m.start;
    r.end = m.end;
    r.prot = m.prot();
    r.flags = m.shared ? MAP_SHARED : MAP_PRIVATE;
    r.name = m.name;
    using K = image::RegionKind;
    switch (m.special) {
      case proc::Special::vdso:
        r.kind = K::vdso;
        plan.vdso_start = m.start;
        plan.vdso_end = m.end;
        break;
      case proc::Special::vvar: r.kind = K::vvar; break;
      case proc::Special::vvar_vclock: r.kind = K::vvar_vclock; break;
      case proc::Special::vsyscall: r.kind = K::vsyscall; break;
      case proc::Special::heap:
        r.kind = K::heap;
        rp.save_pages = true;
        break;
      case proc::Special::stack:
        r.kind = K::stack;
        r.flags |= MAP_GROWSDOWN;
        rp.save_pages = true;
        break;
      case proc::Special::other:  // "[anon:NAME]" (PR_SET_VMA_ANON_NAME) and the like
        if (m.shared) return refuse("is a shared special mapping");
        r.kind = K::anon_private;
        rp.save_pages = true;
        break;
      case proc::Special::none:
        break;
    }
    if (m.special != proc::Special::none) {
      plan.regions.push_back(std::move(rp));
      continue;
    }
    if (m.anonymous()) {
      r.kind = m.shared ? K::anon_shared : K::anon_private;
      rp.save_pages = true;
      rp.policy = m.shared ? proc::SavePolicy::present : proc::SavePolicy::present_or_swapped;
      plan.regions.push_back(std::move(rp));
      continue;
    }
    if (m.is_shared_anon()) {
      r.kind = K::anon_shared;
      rp.save_pages = true;
      rp.policy = proc::SavePolicy::present;
      plan.regions.push_back(std::move(rp));
      continue;
    }
    if (m.path.rfind("/SYSV", 0) == 0) return refuse("is System V shared memory");
    if (m.path.empty() || m.path.front() != '/') return refuse("has an unknown backing object");

    // A file mapping: identify the file through map_files (works for renamed and deleted
    // files), falling back to the path.
    std::string open_path = map_files_path(pid, m);
    struct stat st {};
    if (::stat(open_path.c_str(), &st) != 0) {
      open_path = m.path;
      if (::stat(open_path.c_str(), &st) != 0)
        return fail_errno("stat mapped file " + m.path + " of " + who);
    }
    if (st.st_ino != m.ino) return refuse("could not be opened as the mapped file");
    if (!S_ISREG(st.st_mode)) return refuse("maps a device or special file");
    bool tmpfs = false;
    if (struct statfs sf {}; ::statfs(open_path.c_str(), &sf) == 0)
      tmpfs = sf.f_type == TMPFS_MAGIC || sf.f_type == HUGETLBFS_MAGIC;
    r.pgoff = m.pgoff;

    if (m.is_memfd()) {
      if (!m.shared) return refuse("is a private mapping of a memfd");
      r.kind = K::memfd_shared;
      r.blob = blobs.add(st.st_dev, st.st_ino,
                         {open_path, static_cast<uint64_t>(st.st_size), m.path.substr(1)});
      plan.regions.push_back(std::move(rp));
      continue;
    }
    if (m.shared && tmpfs) {
      r.kind = K::shm_shared;
      r.blob = blobs.add(st.st_dev, st.st_ino, {open_path, static_cast<uint64_t>(st.st_size), m.path});
      plan.regions.push_back(std::move(rp));
      continue;
    }
    if (m.deleted) return refuse("maps a file that was deleted");
    if (tmpfs && !m.shared) return refuse("is a private mapping of a tmpfs file");

    auto key = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
    auto it = file_index.find(key);
    if (it == file_index.end()) {
      image::FileIdentity fi;
      fi.path = m.path;
      fi.dev = st.st_dev;
      fi.ino = st.st_ino;
      fi.size = static_cast<uint64_t>(st.st_size);
      fi.mtime_ns = mtime_ns(st);
      if (!m.shared) {
        // Private mappings rely on the file content at restore: hash it.
        FERRY_TRY(h, cached_file_hash(open_path, fi.dev, fi.ino, fi.size, fi.mtime_ns));
        fi.hash = h;
      }
      it = file_index.emplace(key, static_cast<int32_t>(plan.mapped_files.size())).first;
      plan.mapped_files.push_back(std::move(fi));
    } else if (!m.shared && plan.mapped_files[static_cast<size_t>(it->second)].hash.empty()) {
      auto& fi = plan.mapped_files[static_cast<size_t>(it->second)];
      FERRY_TRY(h, cached_file_hash(open_path, fi.dev, fi.ino, fi.size, fi.mtime_ns));
      fi.hash = h;
    }
    r.mapped_file = it->second;
    if (m.shared) {
      r.kind = K::file_shared;
    } else {
      r.kind = K::file_private;
      // smaps says whether the VMA has any anonymous (COW'd) pages at all; skip the pagemap
      // scan of untouched text and rodata.
      auto a = anon_bytes.find(m.start);
      rp.save_pages = a == anon_bytes.end() || a->second > 0;
      rp.policy = proc::SavePolicy::anon_only;
    }
    plan.regions.push_back(std::move(rp));
  }
  return plan;
}

namespace {

// Batches page runs into large process_vm_readv calls and hands the bytes to the sink.
class PageStreamer {
public:
  // proc_mem: read with pread of /proc/PID/mem (a snapshot: see the top of this file).
  PageStreamer(const ptrace::Tracee& t, pid_t pid, image::ImageSink& sink, bool proc_mem)
      : t_(t), pid_(pid), sink_(sink) {
    if (proc_mem) mem_ = UniqueFd(::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC));
    if (mem_) {
      // Does the sink offer its buffers (an image file does)?
      auto b = sink.page_buffer(kPieceBytes);
      in_place_ = b && !b->empty();
    }
    if (!in_place_) buf_ = HugeBuffer(kBufBytes);  // in the pause: 2 MiB pages fault in cheaply
  }

  // skip_zero: pages that are all zeros may be left out (anonymous memory).
  Result<void> add(uint64_t addr, uint64_t len, bool skip_zero) {
    if (in_place_) return add_in_place(addr, len, skip_zero);
    if (buf_.empty()) return fail_errno("allocate a page buffer", ENOMEM);
    while (len > 0) {
      if (used_ == buf_.size() || pieces_.size() == kMaxIov) FERRY_TRY_VOID(flush());
      uint64_t take = std::min<uint64_t>(len, buf_.size() - used_);
      pieces_.push_back({addr, take, skip_zero});
      used_ += take;
      addr += take;
      len -= take;
    }
    return {};
  }

  Result<void> flush() {
    if (pieces_.empty()) return {};
    std::vector<iovec> local(pieces_.size()), remote(pieces_.size());
    size_t off = 0;
    for (size_t i = 0; i < pieces_.size(); ++i) {
      local[i] = {buf_.data() + off, pieces_[i].len};
      remote[i] = {reinterpret_cast<void*>(pieces_[i].addr), pieces_[i].len};
      off += pieces_[i].len;
    }
    size_t got = mem_ ? read_proc_mem() : read_vm(local, remote);
    if (got < used_) {
      // Finish the rest (unreadable-protection pages, or a short read) through /proc/PID/mem
      // (Tracee::read_memory falls back to it).
      size_t pos = 0;
      for (const auto& p : pieces_) {
        if (pos + p.len > got) {
          size_t skip = got > pos ? got - pos : 0;
          auto r = t_.read_memory(p.addr + skip, std::span(buf_.data() + pos + skip, p.len - skip));
          if (!r) return fail(r.error().wrap("read memory of process " + std::to_string(pid_)));
        }
        pos += p.len;
      }
    }
    size_t pos = 0;
    for (const auto& p : pieces_) {
      FERRY_TRY_VOID(hand_over(p, buf_.data() + pos));
      pos += p.len;
    }
    bytes_ += used_;
    pieces_.clear();
    used_ = 0;
    return {};
  }

  // A snapshot into a sink that offers its buffers (an image file): pieces of at most kPieceBytes are read with pread of
  // /proc/PID/mem straight into the chunk buffer the writer hands out (page_buffer), then its
  // all-zero pages are dropped by moving the later pages of the piece down over them (the piece
  // was just read: the move stays in the cache) and the runs of kept pages are committed.
  Result<void> add_in_place(uint64_t addr, uint64_t len, bool skip_zero) {
    while (len > 0) {
      FERRY_TRY(buf, sink_.page_buffer(static_cast<size_t>(std::min<uint64_t>(len, kPieceBytes))));
      const size_t n = buf.size();
      FERRY_TRY_VOID(read_into(addr, buf.data(), n));
      bytes_ += n;
      if (!skip_zero || n % kPage != 0) {
        FERRY_TRY_VOID(sink_.commit_pages(addr, n));
      } else {
        size_t kept = 0;  // bytes of kept pages before the current run, at the start of buf
        size_t run = 0;   // bytes of the current run of kept pages, at buf + kept
        uint64_t run_addr = addr;
        for (size_t off = 0; off < n; off += kPage) {
          if (all_zero(buf.data() + off)) {
            ++zero_pages_;
            if (run > 0) FERRY_TRY_VOID(sink_.commit_pages(run_addr, run));
            kept += run;
            run = 0;
            continue;
          }
          if (run == 0) run_addr = addr + off;
          if (kept + run != off) std::memmove(buf.data() + kept + run, buf.data() + off, kPage);
          run += kPage;
        }
        if (run > 0) FERRY_TRY_VOID(sink_.commit_pages(run_addr, run));
      }
      addr += n;
      len -= n;
    }
    return {};
  }

  // Reads [addr, addr + n) of the process into out: pread of /proc/PID/mem, the rest (a short
  // read) through Tracee::read_memory.
  Result<void> read_into(uint64_t addr, std::byte* out, size_t n) {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(mem_.get(), out + done, n - done, static_cast<off_t>(addr + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      done += static_cast<size_t>(r);
    }
    if (done < n) {
      auto r = t_.read_memory(addr + done, std::span(out + done, n - done));
      if (!r) return fail(r.error().wrap("read memory of process " + std::to_string(pid_)));
    }
    return {};
  }

  uint64_t zero_pages() const noexcept { return zero_pages_; }
  uint64_t bytes() const noexcept { return bytes_; }
  bool via_proc_mem() const noexcept { return static_cast<bool>(mem_); }

private:
  // Bytes read in order from the start of pieces_ (the rest is left to read_memory).
  size_t read_vm(std::vector<iovec>& local, std::vector<iovec>& remote) {
    ssize_t n;
    do {
      n = ::process_vm_readv(pid_, local.data(), local.size(), remote.data(), remote.size(), 0);
    } while (n < 0 && errno == EINTR);
    return n > 0 ? static_cast<size_t>(n) : 0;
  }
  size_t read_proc_mem() {
    size_t pos = 0;
    for (const auto& p : pieces_) {
      size_t done = 0;
      while (done < p.len) {
        ssize_t n = ::pread(mem_.get(), buf_.data() + pos + done, p.len - done, static_cast<off_t>(p.addr + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return pos + done;
        done += static_cast<size_t>(n);
      }
      pos += p.len;
    }
    return pos;
  }

  static constexpr size_t kBufBytes = 8u << 20;  // 8 MiB per process_vm_readv call
  static constexpr size_t kPieceBytes = 256u << 10;  // per pread straight into a chunk
  UniqueFd mem_;  // /proc/PID/mem when reading a snapshot
  static constexpr size_t kMaxIov = 1024;         // IOV_MAX
  static constexpr size_t kPage = 4096;
  struct Piece {
    uint64_t addr, len;
    bool skip_zero;
  };

  static bool all_zero(const std::byte* p) {
    const auto* w = reinterpret_cast<const uint64_t*>(p);
    for (size_t i = 0; i < kPage / 8; i += 4)
      if ((w[i] | w[i + 1] | w[i + 2] | w[i + 3]) != 0) return false;
    return true;
  }

  // Appends a piece to the sink, without its all-zero pages when allowed.
  Result<void> hand_over(const Piece& p, const std::byte* data) {
    if (!p.skip_zero || p.len % kPage != 0)
      return sink_.append_pages(p.addr, std::span<const std::byte>(data, p.len));
    size_t run = 0;  // start of the current run of non-zero pages
    for (size_t off = 0; off <= p.len; off += kPage) {
      bool zero = off < p.len && all_zero(data + off);
      if (off == p.len || zero) {
        if (off > run)
          FERRY_TRY_VOID(sink_.append_pages(p.addr + run, std::span<const std::byte>(data + run, off - run)));
        run = off + kPage;
        zero_pages_ += zero;
      }
    }
    return {};
  }
  const ptrace::Tracee& t_;
  pid_t pid_;
  image::ImageSink& sink_;
  bool in_place_ = false;  // reading a snapshot into a sink that offers its buffers: add_in_place
  HugeBuffer buf_;
  std::vector<Piece> pieces_;
  size_t used_ = 0;
  uint64_t bytes_ = 0;
  uint64_t zero_pages_ = 0;
};

}  // namespace

Result<void> stream_pages(const ptrace::Tracee& t, pid_t pid, const MemoryPlan& plan,
                          uint64_t page_size, image::ImageSink& sink, PageSelect select,
                          const IncrementalBasis* inc, std::vector<image::PageRef>* refs) {
  const auto t0 = std::chrono::steady_clock::now();
  FERRY_TRY(pm, proc::Pagemap::open(pid));
  PageStreamer streamer(t, pid, sink, select == PageSelect::forked);
  for (const auto& rp : plan.regions) {
    if (!rp.save_pages) continue;
    if (select == PageSelect::fork_skips && !rp.fork_skips) continue;
    if (select == PageSelect::forked && rp.fork_skips) continue;
    FERRY_TRY(runs, proc::scan_runs(pm, rp.region.start, rp.region.end, page_size, rp.policy));
    using K = image::RegionKind;
    K k = rp.region.kind;
    bool anon = k == K::anon_private || k == K::heap || k == K::stack || k == K::anon_shared;
    const bool skip_zero = anon && page_size == 4096;
    const bool priv = k == K::anon_private || k == K::heap || k == K::stack || k == K::file_private;
    bool tracked = false;
    if (inc && refs && priv) {
      const auto& tr = inc->tracked;
      auto it = std::upper_bound(tr.begin(), tr.end(), rp.region.start,
                                 [](uint64_t a, const proc::AddrRange& r) { return a < r.start; });
      tracked = it != tr.begin() && std::prev(it)->end >= rp.region.end;
    }
    for (const auto& run : runs) {
      if (!tracked) {
        FERRY_TRY_VOID(streamer.add(run.start, run.npages * page_size, skip_zero));
        continue;
      }
      Result<void> r;
      split_incremental(
          run.start, run.start + run.npages * page_size, page_size, *inc,
          [&](uint64_t a, uint64_t b) {
            if (r) r = streamer.add(a, b - a, skip_zero);
          },
          [&](uint64_t a, uint64_t b, uint32_t base) {
            if (!refs->empty() && refs->back().base == base &&
                refs->back().addr + refs->back().npages * page_size == a)
              refs->back().npages += (b - a) / page_size;
            else
              refs->push_back({a, (b - a) / page_size, base});
          });
      FERRY_TRY_VOID(r);
    }
  }
  FERRY_TRY_VOID(streamer.flush());
  if (const char* e = std::getenv("FERRY_WRITE_TRACE"); e && *e && std::strcmp(e, "0") != 0)
    std::fprintf(stderr, "ferry read pid %d (%s): %llu bytes, %llu zero pages left out, %.3f s\n", pid,
                 streamer.via_proc_mem() ? "/proc/PID/mem" : "process_vm_readv",
                 static_cast<unsigned long long>(streamer.bytes()),
                 static_cast<unsigned long long>(streamer.zero_pages()),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return {};
}

Result<std::vector<int32_t>> stream_blobs(pid_t pid, const BlobTable& blobs, image::ImageSink& sink) {
  std::vector<int32_t> ids;
  HugeBuffer buf;  // allocated for the first blob: most processes have none
  for (const auto& b : blobs.blobs()) {
    if (!buf.ensure(8u << 20)) return fail_errno("allocate a blob buffer", ENOMEM);
    UniqueFd fd(::open(b.source.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + b.name + " of process " + std::to_string(pid) + " for saving");
    FERRY_TRY(id, sink.begin_blob(b.size, b.name));
    uint64_t off = 0;
    while (off < b.size) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), b.size - off));
      ssize_t n = ::pread(fd.get(), buf.data(), want, static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail_errno("read " + b.name + " of process " + std::to_string(pid));
      if (n == 0) {
        // The object shrank while frozen (another process truncated it): pad with zeros so the
        // blob has the announced size; the mapping would SIGBUS there anyway.
        std::memset(buf.data(), 0, want);
        n = static_cast<ssize_t>(want);
      }
      FERRY_TRY_VOID(sink.append_blob_data(id, std::span<const std::byte>(buf.data(), static_cast<size_t>(n))));
      off += static_cast<uint64_t>(n);
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

}  // namespace ferry::capture::detail
