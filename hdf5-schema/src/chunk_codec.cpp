// SPDX-License-Identifier: Apache-2.0
// zstd chunk encoding (sample first, then the whole chunk), the HDF5 filter callback for
// filter id 32015, and a small FIFO worker pool. See chunk_codec.hpp.
#include "chunk_codec.hpp"

#include <zstd.h>

#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace ferry::image {

namespace {

constexpr size_t kSampleBytes = 64u << 10;

ZSTD_CCtx* thread_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> c(ZSTD_createCCtx(), ZSTD_freeCCtx);
  return c.get();
}

// CPU time of the calling thread: the sample's compression speed, not disturbed by other
// processes taking the CPU meanwhile.
double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

ZSTD_DCtx* thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> d(ZSTD_createDCtx(), ZSTD_freeDCtx);
  return d.get();
}

// The HDF5 filter function (H5Z_func_t) for 32015: compress on write, decompress on read.
size_t zstd_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[], size_t nbytes,
                   size_t* buf_size, void** buf) {
  const auto* in = static_cast<const std::byte*>(*buf);
  if (flags & H5Z_FLAG_REVERSE) {
    unsigned long long n = ZSTD_getFrameContentSize(in, nbytes);
    if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > (size_t{1} << 30))
      return 0;
    void* out = std::malloc(n ? n : 1);
    if (!out) return 0;
    size_t got = ZSTD_decompressDCtx(thread_dctx(), out, n, in, nbytes);
    if (ZSTD_isError(got) || got != n) {
      std::free(out);
      return 0;
    }
    std::free(*buf);
    *buf = out;
    *buf_size = n;
    return n;
  }
  int level = cd_nelmts > 0 ? static_cast<int>(cd_values[0]) : kZstdLevel;
  size_t bound = ZSTD_compressBound(nbytes);
  void* out = std::malloc(bound);
  if (!out) return 0;
  size_t got = ZSTD_compressCCtx(thread_cctx(), out, bound, in, nbytes, level);
  if (ZSTD_isError(got)) {
    std::free(out);
    return 0;
  }
  std::free(*buf);
  *buf = out;
  *buf_size = bound;
  return got;
}

}  // namespace

void register_zstd_filter() {
  static const bool done = [] {
    static const H5Z_class2_t cls = {H5Z_CLASS_T_VERS, kZstdFilter, 1, 1, "zstd (ferry)",
                                     nullptr, nullptr, zstd_filter};
    return H5Zregister(&cls) >= 0;
  }();
  (void)done;
}

size_t zstd_encode(std::span<const std::byte> in, std::vector<std::byte>& out, double min_saved_rate) {
  ZSTD_CCtx* c = thread_cctx();
  if (!c) return 0;
  if (in.size() > 2 * kSampleBytes) {
    // The sample comes from the middle: the start of a chunk is often a page header. It is
    // compressed into a small buffer of its own: `out` grows to a whole chunk only for a
    // chunk that gets compressed.
    thread_local std::vector<std::byte> sample_out(ZSTD_compressBound(kSampleBytes));
    auto sample = in.subspan(in.size() / 2, kSampleBytes);
    // A thread's first compression also allocates and first-touches its context: not timed.
    thread_local bool warm = false;
    if (!warm) {
      (void)ZSTD_compressCCtx(c, sample_out.data(), sample_out.size(), sample.data(), sample.size(), kZstdLevel);
      warm = true;
    }
    double t0 = thread_cpu_seconds();
    size_t s = ZSTD_compressCCtx(c, sample_out.data(), sample_out.size(), sample.data(), sample.size(), kZstdLevel);
    double cpu = std::max(thread_cpu_seconds() - t0, 1e-6);
    if (ZSTD_isError(s)) return 0;
    double saved = 1.0 - static_cast<double>(s) / static_cast<double>(sample.size());
    if (saved < kMinSampleSaving) return 0;
    if (saved * static_cast<double>(sample.size()) / cpu < std::max(kMinSavedRate, min_saved_rate)) return 0;
  }
  out.resize(std::max(out.size(), ZSTD_compressBound(in.size())));
  size_t n = ZSTD_compressCCtx(c, out.data(), out.size(), in.data(), in.size(), kZstdLevel);
  if (ZSTD_isError(n) || n > in.size() / 20 * 19) return 0;
  return n;
}

bool zstd_decode(std::span<const std::byte> in, std::span<std::byte> out) {
  unsigned long long n = ZSTD_getFrameContentSize(in.data(), in.size());
  if (n != out.size()) return false;
  ZSTD_DCtx* d = thread_dctx();
  if (!d) return false;
  size_t got = ZSTD_decompressDCtx(d, out.data(), out.size(), in.data(), in.size());
  return !ZSTD_isError(got) && got == out.size();
}

WorkerPool::WorkerPool(unsigned threads) {
  for (unsigned i = 0; i < std::max(1u, threads); ++i)
    threads_.emplace_back([this] {
      for (;;) {
        std::function<void()> task;
        {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
          if (tasks_.empty()) return;  // stop_ and nothing left
          task = std::move(tasks_.front());
          tasks_.pop_front();
        }
        task();
      }
    });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

unsigned encoder_threads() {
  if (const char* e = std::getenv("FERRY_ENCODERS"); e && *e)
    return static_cast<unsigned>(std::clamp(std::atoi(e), 0, 8));
  unsigned n = std::thread::hardware_concurrency();
  return std::clamp(n > 1 ? n - 1 : 1u, 1u, 8u);
}

}  // namespace ferry::image
