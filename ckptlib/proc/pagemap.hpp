// SPDX-License-Identifier: Apache-2.0
// /proc/PID/pagemap: one u64 per virtual page (Documentation/admin-guide/mm/pagemap.rst).
// Capture uses it to find the runs of pages whose bytes must be saved.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <vector>

#include "ferry/common/result.hpp"

namespace ferry::proc {

inline constexpr uint64_t kPmPresent = 1ull << 63;
inline constexpr uint64_t kPmSwapped = 1ull << 62;
inline constexpr uint64_t kPmFileOrSharedAnon = 1ull << 61;  // page cache or shmem page

// Which pages of a VMA hold state that exists nowhere else.
enum class SavePolicy {
  present_or_swapped,  // private anonymous memory (heap, stack, anon mmap): anything touched
  anon_only,           // private file mappings: only COW'd pages (present and bit 61 clear,
                       //   or swapped; a swapped private-file page is always anonymous)
  present,             // shared anonymous memory: every page that exists
};

bool page_must_be_saved(uint64_t entry, SavePolicy policy) noexcept;

struct PageRange {
  uint64_t start = 0;   // virtual address
  uint64_t npages = 0;
  bool operator==(const PageRange&) const = default;
};

// Coalesces pages to save into runs; entries[i] describes the page at base + i*page_size.
std::vector<PageRange> runs_to_save(std::span<const uint64_t> entries, uint64_t base,
                                    uint64_t page_size, SavePolicy policy);

// Open /proc/PID/pagemap once per capture; read entries for [start, start+npages*page).
class Pagemap {
public:
  static Result<Pagemap> open(pid_t pid);
  Result<void> read(uint64_t start, uint64_t page_size, std::span<uint64_t> out) const;
  int fd() const noexcept { return fd_; }
  Pagemap(Pagemap&&) noexcept;
  Pagemap& operator=(Pagemap&&) noexcept;
  Pagemap(const Pagemap&) = delete;
  Pagemap& operator=(const Pagemap&) = delete;
  ~Pagemap();

private:
  Pagemap(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  pid_t pid_ = -1;
  int fd_ = -1;
};

// All runs to save in [start, end): with PAGEMAP_SCAN where the kernel has it
// (pagemap_scan.hpp scan_save_runs), else reading pagemap in blocks (bounded memory).
Result<std::vector<PageRange>> scan_runs(const Pagemap& pm, uint64_t start, uint64_t end,
                                         uint64_t page_size, SavePolicy policy);

}  // namespace ferry::proc
