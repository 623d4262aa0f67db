// SPDX-License-Identifier: Apache-2.0
// pagemap reading and run coalescing (see pagemap.hpp).
#include "proc/pagemap.hpp"

#include "proc/pagemap_scan.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <string>
#include <utility>

namespace ferry::proc {

bool page_must_be_saved(uint64_t entry, SavePolicy policy) noexcept {
  bool present = entry & kPmPresent, swapped = entry & kPmSwapped;
  switch (policy) {
    case SavePolicy::present_or_swapped:
      return present || swapped;
    case SavePolicy::anon_only:
      return swapped || (present && !(entry & kPmFileOrSharedAnon));
    case SavePolicy::present:
      return present || swapped;
  }
  return false;
}

std::vector<PageRange> runs_to_save(std::span<const uint64_t> entries, uint64_t base,
                                    uint64_t page_size, SavePolicy policy) {
  std::vector<PageRange> runs;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!page_must_be_saved(entries[i], policy)) continue;
    uint64_t addr = base + i * page_size;
    if (!runs.empty() && runs.back().start + runs.back().npages * page_size == addr)
      ++runs.back().npages;
    else
      runs.push_back({addr, 1});
  }
  return runs;
}

Result<Pagemap> Pagemap::open(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_errno("open " + path);
  return Pagemap(pid, fd);
}

Pagemap::Pagemap(Pagemap&& o) noexcept : pid_(o.pid_), fd_(std::exchange(o.fd_, -1)) {}
Pagemap& Pagemap::operator=(Pagemap&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    pid_ = o.pid_;
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}
Pagemap::~Pagemap() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> Pagemap::read(uint64_t start, uint64_t page_size, std::span<uint64_t> out) const {
  size_t bytes = out.size() * sizeof(uint64_t);
  off_t off = static_cast<off_t>(start / page_size * sizeof(uint64_t));
  size_t done = 0;
  auto* dst = reinterpret_cast<char*>(out.data());
  while (done < bytes) {
    ssize_t n = ::pread(fd_, dst + done, bytes - done, off + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read /proc/" + std::to_string(pid_) + "/pagemap");
    }
    if (n == 0)
      return fail(errc::protocol, "read /proc/" + std::to_string(pid_) + "/pagemap: short read");
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<std::vector<PageRange>> scan_runs(const Pagemap& pm, uint64_t start, uint64_t end,
                                         uint64_t page_size, SavePolicy policy) {
  // FERRY_PAGEMAP_SCAN=0: read the entries even where PAGEMAP_SCAN exists (for comparison).
  if (const char* e = std::getenv("FERRY_PAGEMAP_SCAN"); e == nullptr || std::strcmp(e, "0") != 0) {
    FERRY_TRY(scanned, scan_save_runs(pm.fd(), start, end, page_size, policy));
    if (scanned) return std::move(*scanned);
  }
  // 64 Ki entries (512 KiB) per read: describes 256 MiB of address space at a time.
  constexpr uint64_t kBlock = 64 * 1024;
  std::vector<uint64_t> buf;
  std::vector<PageRange> runs;
  for (uint64_t a = start; a < end;) {
    uint64_t n = std::min<uint64_t>(kBlock, (end - a) / page_size);
    buf.resize(n);
    FERRY_TRY_VOID(pm.read(a, page_size, buf));
    for (const auto& r : runs_to_save(buf, a, page_size, policy)) {
      if (!runs.empty() && runs.back().start + runs.back().npages * page_size == r.start)
        runs.back().npages += r.npages;
      else
        runs.push_back(r);
    }
    a += n * page_size;
  }
  return runs;
}

}  // namespace ferry::proc
