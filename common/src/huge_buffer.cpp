// SPDX-License-Identifier: Apache-2.0
// HugeBuffer (see huge_buffer.hpp): map n + 2 MiB, keep the 2 MiB-aligned part, advise huge
// pages on it.
#include "ferry/common/huge_buffer.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <utility>

namespace ferry {

namespace {
constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kPage = 4096;
}  // namespace

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
