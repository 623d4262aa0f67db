// SPDX-License-Identifier: Apache-2.0
// Pure address-space logic of restore (no system calls, unit-tested without privileges):
// /proc/PID/maps parsing, free-range search, where each image region is built (final address
// or a staging spot), the vDSO moves, the unmap set at the point of no return, page writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/model.hpp"

namespace ferry::restore {

// Highest user address + 1 with 4-level paging (TASK_SIZE_MAX on x86-64: 2^47 - one page).
inline constexpr uint64_t kTaskSize = (uint64_t{1} << 47) - 4096;
// Lowest address the planner hands out (above any vm.mmap_min_addr in use).
inline constexpr uint64_t kMinPlanAddr = 0x10000;
// Where the planner starts looking for gadget/staging spots: far from where the kernel puts
// executables (0x55..), mmaps and stacks (0x7f..), so restored programs rarely collide with it.
inline constexpr uint64_t kPlanHint = 0x200000000000;
// The gadget: page 0 holds `syscall; int3` (RX), page 1 is scratch (RW) for syscall arguments.
inline constexpr uint64_t kGadgetPages = 2;

struct Range {
  uint64_t start = 0, end = 0;  // [start, end)
  uint64_t size() const noexcept { return end - start; }
  bool overlaps(const Range& o) const noexcept { return start < o.end && o.start < end; }
  bool contains(const Range& o) const noexcept { return start <= o.start && o.end <= end; }
  bool operator==(const Range&) const = default;
};

// One line of /proc/PID/maps: the range and the path or pseudo name ("[vdso]", "").
struct MapEntry {
  Range range;
  std::string name;
};
std::vector<MapEntry> parse_maps(std::string_view text);
// Reads /proc/<pid>/maps (pid 0: /proc/self/maps).
Result<std::vector<MapEntry>> read_maps(int pid);

// vvar, vvar_vclock, vdso and vsyscall: not built from the image (kernel-owned mappings).
bool is_special(image::RegionKind kind) noexcept;

// The live kernel's or the image's [vvar] [vvar_vclock] [vdso] ranges in address order; a
// component the kernel does not have (no [vvar_vclock] before 6.13) has an empty range.
struct VdsoTriple {
  Range vvar, vvar_vclock, vdso;
  bool present() const noexcept { return vdso.size() != 0; }
  Range span() const noexcept;  // from the lowest start to the highest end of the present ones
};
VdsoTriple live_vdso(const std::vector<MapEntry>& maps);
VdsoTriple image_vdso(const std::vector<image::Region>& regions);

// First page-aligned range of `len` bytes with one free guard page on each side, not
// overlapping any of `busy` (any order), inside [kMinPlanAddr, kTaskSize); searched from
// kPlanHint upwards, then from kMinPlanAddr. 0 if there is none.
uint64_t find_free(const std::vector<Range>& busy, uint64_t len, uint64_t page);

struct AddressPlan {
  uint64_t gadget = 0;               // start of the kGadgetPages pages
  std::vector<uint64_t> build_addr;  // per image region: where it is built (0 = special kind)
  std::vector<bool> staged;          // per image region: built away from its final address
  uint64_t vdso_temp = 0;            // start of a parking spot for the vdso triple, or 0
};

// Decides where everything goes. `live` is the layout of the process about to fork (the
// child starts with exactly this layout). A region whose range is free in `live` is built at
// its final address; any other one at a staging spot free in both layouts. The gadget and a
// vdso parking spot (only when the live triple overlaps the image's) avoid both layouts too.
Result<AddressPlan> plan_addresses(const std::vector<image::Region>& regions,
                                   const std::vector<MapEntry>& live, uint64_t page);

// One mremap at the point of no return: move [from, from+len) to `to`.
struct Move {
  uint64_t from = 0, len = 0, to = 0;
  std::string what;
};
// Moves that bring the live vdso triple onto the image's, keeping their relative layout.
// Goes through `temp` (a spot of span size) when source and target overlap.
Result<std::vector<Move>> plan_vdso_moves(const VdsoTriple& live, const VdsoTriple& target,
                                          uint64_t temp);

// `mapped` minus every range in `keep`: what to munmap at the point of no return.
std::vector<Range> subtract(const std::vector<Range>& mapped, std::vector<Range> keep);

// One copy of page bytes: image address -> address in the child (final or staged).
struct PageWrite {
  uint64_t image_addr = 0, child_addr = 0, len = 0;
};
// Splits every page run at region boundaries and translates it by the region's build
// address. Fails (image_corrupt) if a run is not page aligned, leaves the regions, or lies in
// a region whose kind stores no page bytes (file_shared, vdso, vvar, vvar_vclock, vsyscall).
Result<std::vector<PageWrite>> plan_page_writes(const std::vector<image::PageRun>& runs,
                                                const std::vector<image::Region>& regions,
                                                const std::vector<uint64_t>& build_addr,
                                                uint64_t page);

// Size of a transparent huge page (PMD) on x86-64.
inline constexpr uint64_t kHugePage = uint64_t{2} << 20;
// Regions to fill in transparent huge pages: private anonymous regions (anon_private, heap)
// built at their final address (a staged region would move to another 2 MiB alignment) with
// at least one 2 MiB-aligned window inside the region of which `writes` fill >= 3/4 (the rest
// is typically zero pages, which capture does not store). Returns region indices, ascending.
// Dense memory in huge pages costs at most 1/3 more than the stored pages and makes the
// restored program's first pass over it as fast as the original's, where 4 KiB pages written
// from outside would each take a first-access fault (shadow-paging VMs such as PVM).
std::vector<size_t> plan_huge_regions(const std::vector<image::Region>& regions,
                                      const std::vector<PageWrite>& writes,
                                      const std::vector<bool>& staged);

std::string hex(uint64_t v);

}  // namespace ferry::restore
