// SPDX-License-Identifier: Apache-2.0
// scan_written(): the PAGEMAP_SCAN loop (algorithm in pagemap_scan.hpp).
#include "pagemap_scan.hpp"

#include <sys/ioctl.h>

#include <cerrno>
#include <utility>

#include "uffd_wp_uapi.hpp"

namespace ferry::proc {

namespace {

// Walks [start, end) with the PAGEMAP_SCAN `query` (its range and vector are set here),
// repeating from walk_end until the end; `take` gets each reported region. Returns 0, or the
// errno of the call that failed (EIO: the kernel made no progress).
template <class Take>
int scan_walk(int pagemap_fd, uint64_t start, uint64_t end, pm_scan_arg query, Take take) {
  std::vector<page_region> vec(1024);
  while (start < end) {
    query.size = sizeof query;
    query.start = start;
    query.end = end;
    query.vec = reinterpret_cast<uint64_t>(vec.data());
    query.vec_len = vec.size();
    int n = ::ioctl(pagemap_fd, PAGEMAP_SCAN, &query);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    for (int i = 0; i < n; ++i) take(vec[static_cast<size_t>(i)]);
    if (query.walk_end <= start) return EIO;
    start = query.walk_end;
  }
  return 0;
}

}  // namespace

Result<std::vector<AddrRange>> scan_written(int pagemap_fd, uint64_t start, uint64_t end, bool rearm) {
  std::vector<AddrRange> out;
  pm_scan_arg q{};
  q.flags = PM_SCAN_CHECK_WPASYNC | (rearm ? PM_SCAN_WP_MATCHING : 0);
  q.category_mask = PAGE_IS_WRITTEN;
  q.return_mask = PAGE_IS_WRITTEN;
  const int err = scan_walk(pagemap_fd, start, end, q, [&](const page_region& r) {
    if (!out.empty() && out.back().end == r.start)
      out.back().end = r.end;
    else
      out.push_back({r.start, r.end});
  });
  if (err == EIO) return fail(Error::from_errno("PAGEMAP_SCAN made no progress", EIO));
  if (err != 0) return fail_errno("PAGEMAP_SCAN", err);
  return out;
}

Result<std::optional<std::vector<PageRange>>> scan_save_runs(int pagemap_fd, uint64_t start, uint64_t end,
                                                             uint64_t page_size, SavePolicy policy) {
  std::vector<PageRange> out;
  const uint64_t anyof = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
  const uint64_t required = policy == SavePolicy::anon_only ? PAGE_IS_FILE : 0;  // inverted: not a file page
  pm_scan_arg q{};
  q.category_inverted = required;
  q.category_mask = required;
  q.category_anyof_mask = anyof;
  q.return_mask = anyof | required;
  const int err = scan_walk(pagemap_fd, start, end, q, [&](const page_region& r) {
    if (!out.empty() && out.back().start + out.back().npages * page_size == r.start)
      out.back().npages += (r.end - r.start) / page_size;
    else
      out.push_back({r.start, (r.end - r.start) / page_size});
  });
  if (err == ENOTTY || err == EINVAL) return std::optional<std::vector<PageRange>>{};  // no PAGEMAP_SCAN
  if (err == EIO) return fail(Error::from_errno("PAGEMAP_SCAN made no progress", EIO));
  if (err != 0) return fail_errno("PAGEMAP_SCAN", err);
  return std::optional<std::vector<PageRange>>(std::move(out));
}

}  // namespace ferry::proc
