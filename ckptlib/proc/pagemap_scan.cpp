// SPDX-License-Identifier: Apache-2.0
// scan_written(): the PAGEMAP_SCAN loop (algorithm in pagemap_scan.hpp).
#include "pagemap_scan.hpp"

#include <sys/ioctl.h>

#include <cerrno>
#include <utility>

#include "uffd_wp_uapi.hpp"

namespace ferry::proc {

Result<std::vector<AddrRange>> scan_written(int pagemap_fd, uint64_t start, uint64_t end, bool rearm) {
  std::vector<AddrRange> out;
  std::vector<page_region> vec(512);
  while (start < end) {
    pm_scan_arg arg{};
    arg.size = sizeof arg;
    arg.flags = PM_SCAN_CHECK_WPASYNC | (rearm ? PM_SCAN_WP_MATCHING : 0);
    arg.start = start;
    arg.end = end;
    arg.vec = reinterpret_cast<uint64_t>(vec.data());
    arg.vec_len = vec.size();
    arg.category_mask = PAGE_IS_WRITTEN;
    arg.return_mask = PAGE_IS_WRITTEN;
    int n = ::ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("PAGEMAP_SCAN");
    for (int i = 0; i < n; ++i) {
      const page_region& r = vec[static_cast<size_t>(i)];
      if (!out.empty() && out.back().end == r.start)
        out.back().end = r.end;
      else
        out.push_back({r.start, r.end});
    }
    if (arg.walk_end <= start) return fail(Error::from_errno("PAGEMAP_SCAN made no progress", EIO));
    start = arg.walk_end;
  }
  return out;
}

Result<std::optional<std::vector<PageRange>>> scan_save_runs(int pagemap_fd, uint64_t start, uint64_t end,
                                                             uint64_t page_size, SavePolicy policy) {
  std::vector<PageRange> out;
  std::vector<page_region> vec(1024);
  const uint64_t anyof = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
  const uint64_t required = policy == SavePolicy::anon_only ? PAGE_IS_FILE : 0;  // inverted: not a file page
  while (start < end) {
    pm_scan_arg arg{};
    arg.size = sizeof arg;
    arg.start = start;
    arg.end = end;
    arg.vec = reinterpret_cast<uint64_t>(vec.data());
    arg.vec_len = vec.size();
    arg.category_inverted = required;
    arg.category_mask = required;
    arg.category_anyof_mask = anyof;
    arg.return_mask = anyof | required;
    int n = ::ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == ENOTTY || errno == EINVAL) && out.empty()) return std::optional<std::vector<PageRange>>{};
    if (n < 0) return fail_errno("PAGEMAP_SCAN");
    for (int i = 0; i < n; ++i) {
      const page_region& r = vec[static_cast<size_t>(i)];
      if (!out.empty() && out.back().start + out.back().npages * page_size == r.start)
        out.back().npages += (r.end - r.start) / page_size;
      else
        out.push_back({r.start, (r.end - r.start) / page_size});
    }
    if (arg.walk_end <= start) return fail(Error::from_errno("PAGEMAP_SCAN made no progress", EIO));
    start = arg.walk_end;
  }
  return std::optional<std::vector<PageRange>>(std::move(out));
}

}  // namespace ferry::proc
