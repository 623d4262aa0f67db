// SPDX-License-Identifier: Apache-2.0
// write_pages: the page bytes of an image into the regions build_regions made in the child.
// Algorithm:
//   1. The page runs are split at region boundaries (plan_page_writes) and sorted by where
//      their bytes are stored (ImageSource::storage_pos: image, offset in its pages), so every
//      chunk of every image is read once, in file order (a chain's bases one after the other).
//   2. Dense anonymous regions get MADV_HUGEPAGE first when asked (plan_huge_regions).
//      Otherwise the private anonymous regions (anon, heap, stack) are registered with a
//      userfaultfd created in the child (remote userfaultfd(UFFD_USER_MODE_ONLY), taken over
//      by pidfd_getfd): UFFDIO_COPY then allocates each page with its bytes in it, instead of
//      a zeroed page that is written afterwards (per measurement on this VM: 1 GiB in 0.4-0.8 s
//      against 0.9-1.1 s for process_vm_writev, and the program's first touch of its pages
//      after that is cheaper too). Any failure there: process_vm_writev for everything.
//   3. This thread reads batches of kCopyBatch bytes, each with one read_pages_v (each chunk
//      checked against its checksum; batches end on chunk boundaries, and
//      pieces adjacent in storage read as one, so whole chunks go straight into the batch, no
//      copy via the reader's cache). A writer thread moves each finished
//      batch into the child (UFFDIO_COPY per piece in a registered region, one
//      process_vm_writev for the rest) while the next batch is read; three batches circulate.
//      When all three wait for the writer, this thread places the newest itself (take_free).
//      HDF5 calls stay on this thread (Debian's HDF5 is not thread-safe).
//      A chain's generations interleaved in the child (pieces under 1 MiB on average) are
//      read in destination windows instead (fill_windows.hpp): each batch is laid out like a
//      stretch of the child, every image's pieces of it read straight to their places
//      (read_stored_v: one preadv per image and chunk, chunk checksums streamed across
//      windows, the chunks still open finished at the end), and pieces adjacent in the child
//      go in with one UFFDIO_COPY.
//   4. Bytes the writer could not place (a short write) are written by this thread through the
//      tracee (process_vm_writev, else /proc/PID/mem) when the batch comes back. Then the
//      userfaultfd ranges are unregistered and the descriptor closed, before any other step.
//   With RestoreOptions::lazy, the private anonymous regions at their final address are
//   registered on a userfaultfd of lazy_pages.cpp instead and their pieces left to it.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "ferry/common/huge_buffer.hpp"
#include "ferry/common/unique_fd.hpp"
#include "restore/address_plan.hpp"
#include "restore/child_builder.hpp"
#include "restore/fill_windows.hpp"
#include "restore/lazy_internal.hpp"
#include "restore/steps.hpp"

namespace ferry::restore {

using image::RegionKind;

namespace {

constexpr size_t kMaxIov = 1024;  // IOV_MAX: pieces per batch
constexpr size_t kBatches = 3;

double thread_cpu_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Wall and CPU seconds of one side of the fill (FERRY_RESTORE_TRACE): which side bounds it.
struct SideTime {
  double wall = 0, cpu = 0;
  std::string text() const { return std::to_string(wall) + " s (CPU " + std::to_string(cpu) + " s)"; }
};

// A userfaultfd of the child's address space, held by us, with the ranges registered on it.
struct ChildUffd {
  UniqueFd fd;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // [start, end) child addresses, sorted

  bool covers(uint64_t addr) const { return range_of(addr) >= 0; }
  // Index of the registered range holding addr, -1 if none.
  long range_of(uint64_t addr) const {
    auto it = std::upper_bound(ranges.begin(), ranges.end(), std::make_pair(addr, ~uint64_t{0}));
    if (it == ranges.begin() || addr >= std::prev(it)->second) return -1;
    return static_cast<long>(std::prev(it) - ranges.begin());
  }
  void unregister(uint64_t start, uint64_t end) const {
    uffdio_range r{start, end - start};
    (void)::ioctl(fd.get(), UFFDIO_UNREGISTER, &r);
  }
  void close_all() {
    for (const auto& [s, e] : ranges) unregister(s, e);
    ranges.clear();
    fd.reset();
  }
};

// Creates a userfaultfd in the child, takes it over and registers the private anonymous
// regions (not those advised huge pages). Returns an empty ChildUffd if anything fails.
ChildUffd open_child_uffd(ChildBuilder& b, const image::ProcessImage& img, const AddressPlan& plan,
                          const std::vector<size_t>& huge) {
  ChildUffd u;
  auto remote = b.call("userfaultfd in the child", SYS_userfaultfd, {O_CLOEXEC | UFFD_USER_MODE_ONLY});
  if (!remote) return u;
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, b.pid(), 0)));
  if (pidfd) u.fd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), static_cast<int>(*remote), 0)));
  (void)b.close(static_cast<int>(*remote));  // ours keeps it alive; the child must not keep an fd
  if (!u.fd) return u;
  uffdio_api api{};
  api.api = UFFD_API;
  if (::ioctl(u.fd.get(), UFFDIO_API, &api) != 0) {
    u.fd.reset();
    return u;
  }
  for (size_t i = 0; i < img.regions.size(); ++i) {
    const auto& r = img.regions[i];
    if (r.kind != RegionKind::anon_private && r.kind != RegionKind::heap && r.kind != RegionKind::stack) continue;
    if (plan.build_addr[i] == 0 || std::find(huge.begin(), huge.end(), i) != huge.end()) continue;
    uffdio_register reg{};
    reg.range = {plan.build_addr[i], r.end - r.start};
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (::ioctl(u.fd.get(), UFFDIO_REGISTER, &reg) == 0 && (reg.ioctls & (uint64_t{1} << _UFFDIO_COPY)))
      u.ranges.push_back({plan.build_addr[i], plan.build_addr[i] + (r.end - r.start)});
    else if (reg.ioctls != 0)
      u.unregister(plan.build_addr[i], plan.build_addr[i] + (r.end - r.start));
  }
  std::sort(u.ranges.begin(), u.ranges.end());
  if (u.ranges.empty()) u.fd.reset();
  return u;
}

// Page bytes on their way into the child: a buffer and the pieces it holds.
struct Batch {
  struct Piece {
    uint64_t image, child, len;
    size_t at;      // offset in data
    bool uffd;      // in a registered region: UFFDIO_COPY
    uint64_t done;  // bytes the writer placed
  };
  HugeBuffer buffer;
  size_t used = 0;
  std::vector<Piece> pieces;
};

class PageFiller {
public:
  PageFiller(ChildBuilder& b, image::ImageSource& src, ChildUffd& uffd) : b_(b), src_(src), uffd_(uffd) {}

  ~PageFiller() {
    if (writer_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      writer_.join();
    }
  }

  // populate=false for a small fill (a lazy restore's few eager pages): touching 24 MiB of
  // buffers costs more than it saves then.
  Result<void> start(bool populate = true) {
    for (auto& bt : batches_) {
      // Reused batch after batch, in huge pages where possible (HugeBuffer: a fresh 4 KiB page
      // costs a hypervisor fault on first touch here), touched once now if populate.
      bt.buffer = HugeBuffer(kCopyBatch);
      if (bt.buffer.empty()) return fail_errno("allocate a page batch", ENOMEM);
      if (populate) std::memset(bt.buffer.data(), 0, kCopyBatch);
      free_.push_back(&bt);
    }
    writer_ = std::thread([this] { writer_loop(); });
    return {};
  }

  // Queues the bytes of [image_addr, +len), stored at `pos`, for child_addr.
  Result<void> add(uint64_t image_addr, uint64_t child_addr, uint64_t len, image::StoragePos pos) {
    while (len > 0) {
      if (!cur_) FERRY_TRY_VOID(take_free());
      if (cur_->pieces.size() == kMaxIov || cur_->used == kCopyBatch) {
        FERRY_TRY_VOID(submit());
        continue;
      }
      const uint64_t space = kCopyBatch - cur_->used;
      uint64_t n = std::min<uint64_t>(len, space);
      bool ends_batch = false;
      if (pos.chunk > 0 && pos.chunk <= kCopyBatch) {
        // End each batch on a chunk boundary, so the next starts on one and the reader reads
        // whole chunks straight into it: at the last boundary this piece reaches if less than
        // a chunk of room would be left after it; a piece with no boundary that does not fit
        // goes to a fresh batch.
        uint64_t boundary = (pos.offset + n) / pos.chunk * pos.chunk;
        if (boundary > pos.offset && space - (boundary - pos.offset) < pos.chunk) {
          n = boundary - pos.offset;
          ends_batch = true;
        } else if (n < len && cur_->used > 0) {
          FERRY_TRY_VOID(submit());
          continue;
        }
      }
      reads_.push_back({image_addr, std::span<std::byte>(cur_->buffer.data() + cur_->used, static_cast<size_t>(n))});
      cur_->pieces.push_back({image_addr, child_addr, n, cur_->used, uffd_.covers(child_addr), 0});
      cur_->used += static_cast<size_t>(n);
      image_addr += n;
      child_addr += n;
      pos.offset += n;
      len -= n;
      total_ += n;
      if (ends_batch) FERRY_TRY_VOID(submit());
    }
    return {};
  }

  // Queues a destination window (fill_windows.hpp) as one batch laid out like the child: its
  // chunks are read straight to their child offsets, and pieces adjacent in the child (and in
  // one registered region) are placed as one.
  Result<void> add_window(const FillWindow& w) {
    if (cur_ && !cur_->pieces.empty()) FERRY_TRY_VOID(submit());
    if (!cur_) FERRY_TRY_VOID(take_free());
    if (cur_->buffer.size() < w.size)  // plan_fill_windows cuts windows at kCopyBatch
      return fail(errc::protocol, "a page window of " + std::to_string(w.size) + " bytes is larger than a batch");
    std::byte* base = cur_->buffer.data();
    for (const auto& p : w.pieces) {
      const size_t at = static_cast<size_t>(p.child_addr - w.child_base);
      stored_reads_.push_back({p.pos.store, p.pos.offset, p.image_addr, {base + at, static_cast<size_t>(p.len)}});
      cur_->pieces.push_back({p.image_addr, p.child_addr, p.len, at, uffd_.covers(p.child_addr), 0});
      total_ += p.len;
    }
    auto& ps = cur_->pieces;
    std::sort(ps.begin(), ps.end(), [](const Batch::Piece& a, const Batch::Piece& b) { return a.child < b.child; });
    size_t out = 0;
    for (size_t k = 0; k < ps.size(); ++k) {
      if (out > 0) {
        Batch::Piece& last = ps[out - 1];
        if (last.child + last.len == ps[k].child && last.uffd == ps[k].uffd &&
            uffd_.range_of(last.child) == uffd_.range_of(ps[k].child)) {
          last.len += ps[k].len;
          continue;
        }
      }
      ps[out++] = ps[k];
    }
    ps.resize(out);
    cur_->used = static_cast<size_t>(w.size);
    ++windows_;
    return submit();
  }

  // Hands over the last batch and waits until every batch is placed.
  Result<void> finish() {
    if (cur_ && !cur_->pieces.empty()) FERRY_TRY_VOID(submit());
    std::deque<Batch*> back;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return queued_.empty() && !writing_; });
      back.swap(done_);
    }
    for (Batch* bt : back) FERRY_TRY_VOID(settle(*bt));
    return {};
  }

  uint64_t total() const noexcept { return total_; }
  uint64_t uffd_bytes() const noexcept { return uffd_bytes_; }
  // UFFDIO_COPY calls made (by both threads); read after finish().
  uint64_t uffd_copies() const noexcept { return uffd_copies_.load(std::memory_order_relaxed); }
  // Time this thread spent reading and checking chunks, and the writer spent placing pages;
  // the writer's is read only after finish().
  const SideTime& reading() const noexcept { return reading_; }
  const SideTime& placing() const noexcept { return placing_; }
  // Batches this thread placed itself (take_free), and the seconds it spent on them.
  unsigned helped_batches() const noexcept { return helped_batches_; }
  unsigned windows() const noexcept { return windows_; }
  double helped() const noexcept { return helped_; }

private:
  // Takes a batch: a never used one, or one the writer finished (its short writes done here);
  // when every batch is queued for the writer, this thread places the newest one itself rather
  // than wait (placing is the slower side when pieces are small: a chain of incremental images
  // gives 64 KiB pieces, one UFFDIO_COPY each).
  Result<void> take_free() {
    Batch* bt = nullptr;
    bool place_here = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return !free_.empty() || !done_.empty() || !queued_.empty(); });
      if (!free_.empty()) {
        bt = free_.front();
        free_.pop_front();
      } else if (!done_.empty()) {
        bt = done_.front();
        done_.pop_front();
      } else {
        bt = queued_.back();
        queued_.pop_back();
        place_here = true;
      }
    }
    if (place_here) {
      const auto t0 = std::chrono::steady_clock::now();
      place(*bt);
      helped_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++helped_batches_;
    }
    FERRY_TRY_VOID(settle(*bt));
    cur_ = bt;
    return {};
  }

  // Reads the current batch's bytes (one read_pages_v: pieces that follow each other in
  // storage become whole-chunk reads) and hands it to the writer.
  Result<void> submit() {
    if (!reads_.empty() || !stored_reads_.empty()) {
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = thread_cpu_s();
      const bool stored = !stored_reads_.empty();
      auto r = stored ? src_.read_stored_v(stored_reads_) : src_.read_pages_v(reads_);
      reading_.wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      reading_.cpu += thread_cpu_s() - c0;
      uint64_t first = stored ? stored_reads_.front().addr : reads_.front().addr;
      reads_.clear();
      stored_reads_.clear();
      if (!r) return fail(r.error().wrap("read pages from " + hex(first)));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      queued_.push_back(cur_);
    }
    cur_ = nullptr;
    cv_.notify_all();
    return {};
  }

  // This thread: whatever the writer could not place, through the tracee.
  Result<void> settle(Batch& bt) {
    for (const auto& p : bt.pieces) {
      if (p.uffd) uffd_bytes_ += p.done;
      if (p.done >= p.len) continue;
      if (p.uffd) uffd_.unregister(p.child + p.done, p.child + p.len);  // else a kernel write fails there
      std::span<const std::byte> rest(bt.buffer.data() + p.at + p.done, static_cast<size_t>(p.len - p.done));
      if (auto r = b_.tracee().write_memory(p.child + p.done, rest); !r)
        return fail(r.error().wrap("write pages of " + hex(p.image + p.done)));
    }
    bt.pieces.clear();
    bt.used = 0;
    return {};
  }

  void writer_loop() {
    for (;;) {
      Batch* bt = nullptr;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queued_.empty(); });
        if (stop_) return;
        bt = queued_.front();
        queued_.pop_front();
        writing_ = true;
      }
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = thread_cpu_s();
      place(*bt);
      placing_.wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      placing_.cpu += thread_cpu_s() - c0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        done_.push_back(bt);
        writing_ = false;
      }
      cv_.notify_all();
    }
  }

  // Writer thread: no HDF5, no ptrace; records in each piece how many bytes it placed.
  void place(Batch& bt) {
    std::vector<iovec> local, remote;
    for (auto& p : bt.pieces) {
      if (!p.uffd) {
        local.push_back({bt.buffer.data() + p.at, static_cast<size_t>(p.len)});
        remote.push_back({reinterpret_cast<void*>(p.child), static_cast<size_t>(p.len)});
        continue;
      }
      for (int tries = 0; p.done < p.len && tries < 100;) {
        uffdio_copy c{};
        c.dst = p.child + p.done;
        c.src = reinterpret_cast<uint64_t>(bt.buffer.data() + p.at + p.done);
        c.len = p.len - p.done;
        // Nothing waits on these pages (the child is stopped, and settle() unregisters a
        // range before anything else writes it): skip the wake-up, 2 us of each call here,
        // 35 ms per GiB of 64 KiB pieces (a chain of incremental images).
        c.mode = UFFDIO_COPY_MODE_DONTWAKE;
        int r = ::ioctl(uffd_.fd.get(), UFFDIO_COPY, &c);
        uffd_copies_.fetch_add(1, std::memory_order_relaxed);
        if (c.copy > 0) p.done += static_cast<uint64_t>(c.copy);
        if (r == 0) continue;
        if (errno != EAGAIN) break;
        ++tries;
      }
    }
    if (local.empty()) return;
    // At most IOV_MAX pieces per call (a window may hold more); after a short write the rest
    // is left to settle().
    uint64_t left = 0;
    bool short_write = false;
    for (size_t k = 0; k < local.size() && !short_write; k += kMaxIov) {
      const size_t cnt = std::min(kMaxIov, local.size() - k);
      uint64_t want = 0;
      for (size_t j = k; j < k + cnt; ++j) want += local[j].iov_len;
      ssize_t n;
      do {
        n = ::process_vm_writev(b_.pid(), local.data() + k, cnt, remote.data() + k, cnt, 0);
      } while (n < 0 && errno == EINTR);
      left += n > 0 ? static_cast<uint64_t>(n) : 0;
      short_write = n < 0 || static_cast<uint64_t>(n) < want;
    }
    for (auto& p : bt.pieces) {
      if (p.uffd) continue;
      p.done = std::min(left, p.len);
      left -= p.done;
    }
  }

  ChildBuilder& b_;
  image::ImageSource& src_;
  ChildUffd& uffd_;
  std::array<Batch, kBatches> batches_;
  Batch* cur_ = nullptr;
  std::vector<image::PageRead> reads_;  // of cur_, not read yet
  std::vector<image::StoredRead> stored_reads_;  // of cur_ when it is a window
  uint64_t total_ = 0, uffd_bytes_ = 0;
  std::atomic<uint64_t> uffd_copies_{0};
  SideTime reading_, placing_;
  unsigned helped_batches_ = 0;  // this thread's
  unsigned windows_ = 0;
  double helped_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch*> free_, queued_, done_;
  bool stop_ = false, writing_ = false;
  std::thread writer_;  // last: joined (in ~PageFiller) before the rest goes
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
  std::vector<size_t> huge_regions = want_huge ? plan_huge_regions(img.regions, writes, plan.staged) : std::vector<size_t>{};
  for (size_t i : huge_regions) {
    const auto& r = img.regions[i];
    auto ok = b.call("advise huge pages for " + hex(r.start), SYS_madvise,
                     {plan.build_addr[i], r.end - r.start, MADV_HUGEPAGE});
    huge += ok.has_value();
  }
  // In storage order: each chunk of each image read once, in file order.
  std::vector<image::StoragePos> pos(writes.size());
  for (size_t i = 0; i < writes.size(); ++i) pos[i] = src.storage_pos(writes[i].image_addr);
  std::vector<size_t> order(writes.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t c) {
    return pos[a].store != pos[c].store ? pos[a].store < pos[c].store : pos[a].offset < pos[c].offset;
  });

  // Lazy restore (lazy_pages.cpp): the pieces in regions registered on the lazy userfaultfd
  // are left to the server thread; everything else is filled here as usual.
  bool lazy = false;
  if (opt.lazy) {
    if (auto l = opt.lazy->open(b, src, plan, huge_regions, page); l) {
      lazy = true;
    } else {
      opt.lazy->refuse(l.error().message());
      if (opt.log) opt.log("restore: lazy restore not possible, filling eagerly: " + l.error().message());
    }
  }
  uint64_t lazy_bytes = 0;
  if (lazy) {
    std::vector<size_t> eager;
    for (size_t i : order) {
      if (opt.lazy->covers(writes[i].child_addr)) {
        opt.lazy->add({writes[i].image_addr, writes[i].child_addr, writes[i].len, pos[i]});
        lazy_bytes += writes[i].len;
      } else {
        eager.push_back(i);
      }
    }
    order.swap(eager);
  }

  // A chain's generations interleaved in the child (pieces under 1 MiB on average): filled in
  // destination windows of kCopyBatch (fill_windows.hpp).
  // FERRY_RESTORE_WINDOWS=0 keeps storage order.
  std::vector<FillWindow> windows;
  {
    uint64_t bytes = 0;
    for (size_t i : order) bytes += writes[i].len;
    const char* wenv = std::getenv("FERRY_RESTORE_WINDOWS");
    if (!lazy && src.reads_scattered() && order.size() > 1 && order.size() * (uint64_t{1} << 20) > bytes &&
        !(wenv && std::strcmp(wenv, "0") == 0)) {
      std::vector<FillPiece> pieces;
      pieces.reserve(order.size());
      for (size_t i : order) pieces.push_back({writes[i].image_addr, writes[i].child_addr, writes[i].len, pos[i]});
      windows = plan_fill_windows(pieces, kCopyBatch);
    }
  }

  if (opt.log)
    opt.log("restore: planned " + std::to_string(writes.size()) + " page pieces" +
            (windows.empty() ? std::string() : " in " + std::to_string(windows.size()) + " destination windows"));
  const char* uenv = std::getenv("FERRY_RESTORE_UFFD");
  ChildUffd uffd;
  if (!lazy && !(uenv && std::strcmp(uenv, "0") == 0)) uffd = open_child_uffd(b, img, plan, huge_regions);
  uint64_t total = 0, by_uffd = 0;
  std::string sides;
  {
    PageFiller filler(b, src, uffd);
    auto filled = [&]() -> Result<void> {
      uint64_t eager_bytes = 0;
      for (size_t i : order) eager_bytes += writes[i].len;
      FERRY_TRY_VOID(filler.start(eager_bytes >= kCopyBatch));
      if (!windows.empty()) {
        for (const auto& w : windows) FERRY_TRY_VOID(filler.add_window(w));
        FERRY_TRY_VOID(filler.finish());
        return src.finish_stored_reads();  // the chunks still open: read to their ends, checked
      }
      for (size_t i : order) FERRY_TRY_VOID(filler.add(writes[i].image_addr, writes[i].child_addr, writes[i].len, pos[i]));
      return filler.finish();
    }();
    if (!filled) return filled;
    total = filler.total();
    by_uffd = filler.uffd_bytes();
    sides = "; " + std::to_string(filler.uffd_copies()) + " UFFDIO_COPY calls; reading " + filler.reading().text() + ", placing " + filler.placing().text();
    if (filler.windows() > 0) sides += "; in " + std::to_string(filler.windows()) + " destination windows";
    if (filler.helped_batches() > 0) {
      char h[96];
      std::snprintf(h, sizeof h, " (and %u batches in %.3f s by the reading thread)", filler.helped_batches(),
                    filler.helped());
      sides += h;
    }
  }
  uffd.close_all();
  if (lazy) {
    if (opt.log)
      opt.log("restore: " + std::to_string(lazy_bytes) + " bytes of pages left to the lazy restore");
  }
  if (opt.log)
    opt.log("restore: wrote " + std::to_string(total) + " bytes of pages in " + std::to_string(writes.size()) +
            " pieces (" + std::to_string(by_uffd) + " by UFFDIO_COPY); " + std::to_string(huge) +
            " regions in huge pages" + sides);
  return {};
}

}  // namespace ferry::restore
