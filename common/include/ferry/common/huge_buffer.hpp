// SPDX-License-Identifier: Apache-2.0
// HugeBuffer: private anonymous memory for ferry's own large buffers (chunk buffers, read
// caches, page batches), in 2 MiB pages where the kernel gives them (a 2 MiB-aligned range with
// MADV_HUGEPAGE; transparent huge pages are "madvise" on Debian). Why: on the project VM the
// first touch of each fresh 4 KiB page costs a hypervisor fault (16 MiB: 55 ms, 0.3 GB/s),
// while a 2 MiB page is one fault (16 MiB: 1.3 ms). Without huge pages it is plain 4 KiB memory.
// The contents start as zeros.
#pragma once

#include <cstddef>

namespace ferry {

// The same for the heap of a ferry process (call it first thing in main, before any thread):
// small and medium allocations (HDF5's per-file caches and conversion buffers, tables, plans)
// come from one heap of `reserve` bytes in 2 MiB pages instead of fresh 4 KiB pages or fresh
// mmaps each time (`ferry restart` opening an image and its 10 bases: 59-68 -> 23-27 ms). Blocks
// below 32 MiB come from the heap, freed memory stays there for reuse (up to 128 MiB), and every
// thread shares the heap (one arena). Best effort: without huge pages it changes nothing else.
void use_huge_pages_for_heap(size_t reserve = size_t{30} << 20);

class HugeBuffer {
public:
  HugeBuffer() = default;
  // n bytes (rounded up to 4 KiB); empty() if the mapping failed.
  explicit HugeBuffer(size_t n);
  ~HugeBuffer();
  HugeBuffer(HugeBuffer&& o) noexcept;
  HugeBuffer& operator=(HugeBuffer&& o) noexcept;
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;

  std::byte* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return data_ == nullptr; }
  // At least n bytes: a new (zeroed) mapping if this one is smaller; the contents are not kept.
  // False if the mapping failed (the buffer is then empty).
  bool ensure(size_t n);

private:
  void release() noexcept;
  std::byte* data_ = nullptr;
  size_t size_ = 0;    // what the caller asked for
  size_t mapped_ = 0;  // the mapping's length (from data_)
};

}  // namespace ferry
