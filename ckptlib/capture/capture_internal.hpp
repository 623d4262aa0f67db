// SPDX-License-Identifier: Apache-2.0
// Internal seams of capture(): planning (pure reading of /proc, all refusals) is separate from
// streaming (writes to the sink), so nothing is written before every check has passed.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"
#include "ferry/image/model.hpp"
#include "proc/maps.hpp"
#include "proc/pagemap.hpp"
#include "ptrace/tracee.hpp"
#include "capture.hpp"
#include "tree_fds.hpp"

namespace ferry::capture::detail {

// Saved file contents to stream as blobs, deduplicated by (dev, ino): a memfd open as an fd
// and mapped shares one blob.
struct BlobPlan {
  std::string source;   // a /proc/PID/... path that opens the object
  uint64_t size = 0;
  std::string name;     // Blob::name
};

class BlobTable {
public:
  // Index of the blob for (dev, ino), adding it if new.
  int32_t add(uint64_t dev, uint64_t ino, BlobPlan plan);
  const std::vector<BlobPlan>& blobs() const noexcept { return blobs_; }

private:
  std::map<std::pair<uint64_t, uint64_t>, int32_t> index_;
  std::vector<BlobPlan> blobs_;
};

// Classifies every open fd; refuses unsupported kinds. FdRecord::blob holds a BlobTable index.
// Fds on the tree's own pipes (tree.pipe_ends) are left out: they are PipeEnd records.
Result<std::vector<image::FdRecord>> plan_fds(pid_t pid, BlobTable& blobs, const TreeFdPlan& tree);

// Streams the buffered bytes of each pipe the plan holds as a blob; returns the Pipe records
// with their blob ids.
Result<std::vector<image::Pipe>> stream_pipes(const TreeFdPlan& tree, image::ImageSink& sink);

// One region plus how its bytes are found.
struct RegionPlan {
  image::Region region;
  bool save_pages = false;
  // A fork() child does not hold this region's pages as they are now (MAP_SHARED memory,
  // MADV_DONTFORK, MADV_WIPEONFORK): with a snapshot they are copied while still frozen.
  bool fork_skips = false;
  proc::SavePolicy policy = proc::SavePolicy::present_or_swapped;
};

struct MemoryPlan {
  std::vector<RegionPlan> regions;
  std::vector<image::FileIdentity> mapped_files;
  uint64_t vdso_start = 0, vdso_end = 0;
};

// Classifies every VMA (refusing unsupported ones) and identifies mapped files (hashing with a
// process-wide cache keyed by dev, ino, size, mtime). Region::blob holds a BlobTable index.
Result<MemoryPlan> plan_memory(pid_t pid, const std::vector<proc::MapEntry>& maps,
                               const std::vector<proc::SmapsEntry>& smaps, BlobTable& blobs);

// Which regions stream_pages reads.
enum class PageSelect { all, fork_skips, forked };

// Streams the pages of every selected region that has save_pages into sink, reading process
// pid (the frozen process, or its snapshot; t is the tracee of that process).
// With `inc` (an incremental checkpoint, capture.hpp IncrementalBasis), pages of tracked
// private regions that are unchanged and held by an earlier generation are appended to `refs`
// (in address order per call) instead of being streamed.
Result<void> stream_pages(const ptrace::Tracee& t, pid_t pid, const MemoryPlan& plan,
                          uint64_t page_size, image::ImageSink& sink,
                          PageSelect select = PageSelect::all,
                          const IncrementalBasis* inc = nullptr,
                          std::vector<image::PageRef>* refs = nullptr);

// Splits the pages [start, end) of a tracked region: `store(a, b)` for those written since the
// previous checkpoint or not held by it, `refer(a, b, base)` for the others (exposed for tests).
template <class Store, class Refer>
void split_incremental(uint64_t start, uint64_t end, uint64_t page_size, const IncrementalBasis& inc,
                       Store store, Refer refer);

// Streams each blob; returns the sink's blob id for each BlobTable index.
Result<std::vector<int32_t>> stream_blobs(pid_t pid, const BlobTable& blobs, image::ImageSink& sink);

// Cached XXH3-128 of a file identified by (dev, ino, size, mtime); `open_path` is read.
Result<std::string> cached_file_hash(const std::string& open_path, uint64_t dev, uint64_t ino,
                                     uint64_t size, int64_t mtime_ns);

template <class Store, class Refer>
void split_incremental(uint64_t start, uint64_t end, uint64_t page_size, const IncrementalBasis& inc,
                       Store store, Refer refer) {
  const auto& w = inc.written;
  const auto& src = inc.sources;
  auto src_end = [&](const image::PageRef& r) { return r.addr + r.npages * page_size; };
  uint64_t a = start;
  while (a < end) {
    auto d = std::lower_bound(w.begin(), w.end(), a, [](const proc::AddrRange& r, uint64_t x) { return r.end <= x; });
    if (d != w.end() && d->start <= a) {
      uint64_t e = std::min(d->end, end);
      store(a, e);
      a = e;
      continue;
    }
    uint64_t clean_end = d != w.end() ? std::min(d->start, end) : end;
    while (a < clean_end) {
      auto s = std::lower_bound(src.begin(), src.end(), a,
                                [&](const image::PageRef& r, uint64_t x) { return src_end(r) <= x; });
      if (s != src.end() && s->addr <= a) {
        uint64_t e = std::min(src_end(*s), clean_end);
        refer(a, e, s->base);
        a = e;
      } else {
        uint64_t e = s != src.end() ? std::min(s->addr, clean_end) : clean_end;
        store(a, e);
        a = e;
      }
    }
  }
}

}  // namespace ferry::capture::detail
