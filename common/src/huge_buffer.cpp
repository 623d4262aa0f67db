// SPDX-License-Identifier: Apache-2.0
// HugeBuffer (see huge_buffer.hpp): map n + 2 MiB, keep the 2 MiB-aligned part, advise huge
// pages on it.
#include "ferry/common/huge_buffer.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace ferry {

namespace {
constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kPage = 4096;
}  // namespace

void use_huge_pages_for_heap(size_t reserve) {
  constexpr size_t kMmapThreshold = size_t{32} << 20;  // glibc's largest
  (void)::mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  (void)::mallopt(M_TRIM_THRESHOLD, 128 << 20);
  (void)::mallopt(M_ARENA_MAX, 1);
  // Grow the heap once by `reserve` (freed at once, kept by the trim threshold), then advise
  // huge pages on its 2 MiB-aligned part; the pages are only allocated when touched.
  void* volatile grown = ::malloc(std::min(reserve, kMmapThreshold - kHuge));  // volatile: kept
  ::free(grown);
  const auto hi = reinterpret_cast<uintptr_t>(::sbrk(0));
  uintptr_t lo = 0;
  if (FILE* f = std::fopen("/proc/self/maps", "re")) {
    char line[512];
    while (std::fgets(line, sizeof line, f))
      if (std::strstr(line, "[heap]")) {
        unsigned long a = 0, b = 0;
        if (std::sscanf(line, "%lx-%lx", &a, &b) == 2 && b == hi) lo = a;
      }
    std::fclose(f);
  }
  const uintptr_t start = (lo + kHuge - 1) / kHuge * kHuge;
  if (lo != 0 && hi > start) (void)::madvise(reinterpret_cast<void*>(start), hi - start, MADV_HUGEPAGE);
}

HugeBuffer::HugeBuffer(size_t n) {
  if (n == 0) return;
  const size_t len = (n + kPage - 1) / kPage * kPage;
  const bool huge = len >= kHuge;
  const size_t span = huge ? len + kHuge : len;
  void* m = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return;
  auto* base = static_cast<std::byte*>(m);
  std::byte* start = base;
  if (huge) {
    const auto addr = reinterpret_cast<uintptr_t>(base);
    start = base + ((kHuge - addr % kHuge) % kHuge);
    if (start > base) ::munmap(base, static_cast<size_t>(start - base));
    if (std::byte* end = start + len; end < base + span) ::munmap(end, static_cast<size_t>(base + span - end));
    (void)::madvise(start, len, MADV_HUGEPAGE);  // advice only
  }
  data_ = start;
  size_ = n;
  mapped_ = len;
}

HugeBuffer::~HugeBuffer() { release(); }

bool HugeBuffer::ensure(size_t n) {
  if (size_ < n || empty()) *this = HugeBuffer(n);
  return !empty();
}

HugeBuffer::HugeBuffer(HugeBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), mapped_(std::exchange(o.mapped_, 0)) {}

HugeBuffer& HugeBuffer::operator=(HugeBuffer&& o) noexcept {
  if (this != &o) {
    release();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapped_ = std::exchange(o.mapped_, 0);
  }
  return *this;
}

void HugeBuffer::release() noexcept {
  if (data_) ::munmap(data_, mapped_);
  data_ = nullptr;
  size_ = mapped_ = 0;
}

}  // namespace ferry
