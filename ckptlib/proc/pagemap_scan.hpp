// SPDX-License-Identifier: Apache-2.0
// The PAGEMAP_SCAN ioctl on /proc/PID/pagemap (6.7+), for write-protect dirty tracking: which
// pages of a userfaultfd WP_ASYNC range were written since they were last write-protected.
//
// Algorithm: ioctl(PAGEMAP_SCAN, {category_mask = PAGE_IS_WRITTEN, flags = CHECK_WPASYNC
// [| WP_MATCHING]}) over [start, end) with a vector of 512 page_region entries; the kernel
// fills it with coalesced written ranges and sets walk_end where it stopped (vector full), so
// the call is repeated from walk_end until walk_end == end. With WP_MATCHING the reported pages
// are write-protected again in the same walk, so no write can fall between report and re-arm.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ferry/common/result.hpp"
#include "proc/pagemap.hpp"

namespace ferry::proc {

struct AddrRange {
  uint64_t start = 0, end = 0;  // [start, end)
  bool operator==(const AddrRange&) const = default;
};

// Written pages of [start, end), sorted and coalesced. `pagemap_fd`: /proc/PID/pagemap open
// for reading (any process the caller may ptrace). rearm: write-protect them again.
// Errors: EPERM when part of the range is not registered WP_ASYNC; ENOTTY/EINVAL on kernels
// without PAGEMAP_SCAN.
Result<std::vector<AddrRange>> scan_written(int pagemap_fd, uint64_t start, uint64_t end, bool rearm);

// The runs of pages of [start, end) that `policy` saves (pagemap.hpp), from PAGEMAP_SCAN's
// categories instead of one pagemap entry per page: present or swapped, and for anon_only not
// a file page (PAGE_IS_FILE is pagemap's bit 61). The kernel returns coalesced ranges, so a GiB
// of present pages is a few calls instead of 2 MiB of entries to read and parse (on the
// project VM: ~70 ms per GiB less per checkpoint). nullopt: the kernel has no PAGEMAP_SCAN
// (before 6.7): read the entries (scan_runs).
Result<std::optional<std::vector<PageRange>>> scan_save_runs(int pagemap_fd, uint64_t start, uint64_t end,
                                                             uint64_t page_size, SavePolicy policy);

}  // namespace ferry::proc
