// SPDX-License-Identifier: Apache-2.0
// The kernel interfaces of write-protect dirty tracking that Debian 12's 6.1 headers lack, in
// one place (values from include/uapi/linux/userfaultfd.h and include/uapi/linux/fs.h of 6.7+,
// verified on 6.18: see shared/reference/restore-facts.md §7). Where the system headers already
// define a name, theirs is used.
#pragma once

#include <linux/ioctl.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)  // never-touched pages count as protected (6.4+)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)  // the kernel resolves WP faults itself (6.7+)
#endif

#ifndef PAGEMAP_SCAN
// include/uapi/linux/fs.h (6.7+)
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)

struct page_region {
  __u64 start;
  __u64 end;  // exclusive
  __u64 categories;
};

#define PM_SCAN_WP_MATCHING (1 << 0)    // write-protect the matched pages, atomically with the report
#define PM_SCAN_CHECK_WPASYNC (1 << 1)  // fail (EPERM) on a page outside a WP_ASYNC range

struct pm_scan_arg {
  __u64 size;
  __u64 flags;
  __u64 start;
  __u64 end;
  __u64 walk_end;  // out: where the walk stopped
  __u64 vec;
  __u64 vec_len;
  __u64 max_pages;
  __u64 category_inverted;
  __u64 category_mask;
  __u64 category_anyof_mask;
  __u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

static_assert(sizeof(struct pm_scan_arg) == 96, "struct pm_scan_arg is 96 bytes (fs.h)");
