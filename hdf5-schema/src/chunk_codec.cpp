// SPDX-License-Identifier: Apache-2.0
// Chunk encoding (samples first, then the whole chunk: raw, zstd or shuffle+zstd), byte
// shuffle/unshuffle, the HDF5 filter callbacks for id 32015, and a small FIFO worker pool. See chunk_codec.hpp.
//
// Shuffle with element size 8, 16 elements (128 bytes) at a time: think of the block's byte
// index as 7 bits, element e (4 bits) then byte b (3 bits); shuffled, it is b then e. One
// round of "register 2k, 2k+1 = unpacklo/unpackhi_epi8(register k, register k + 4)" over
// eight 16-byte registers moves the byte at index p to rotl7(p, 1); so 4 rounds turn (e, b)
// into (b, e) (shuffle) and 3 rounds turn (b, e) into (e, b) (unshuffle). 8 loads, 24 or 32
// unpacks and 8 stores per 128 bytes.
#include "chunk_codec.hpp"

#include <emmintrin.h>
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

// The set_local callback of 32015, run when a dataset is created (after shuffle's, which
// comes first in the pipeline): HDF5's built-in shuffle set its element size to the dataset's
// type size (1 for our uint8 streams); a chunk stream shuffles 8-byte words, so the stored
// parameter must say 8 or stock readers would unshuffle wrong. (Predefined filters cannot be
// re-registered; this is the public way to change what shuffle's set_local stored.)
herr_t zstd_set_local(hid_t dcpl, hid_t /*type*/, hid_t /*space*/) {
  int nf = H5Pget_nfilters(dcpl);
  for (int i = 0; i < nf; ++i) {
    unsigned flags = 0, cd[1] = {0};
    size_t ncd = 1;
    if (H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &ncd, cd, 0, nullptr, nullptr) != kShuffleFilter)
      continue;
    const unsigned elem = kShuffleElementBytes;
    return H5Pmodify_filter(dcpl, kShuffleFilter, flags, 1, &elem);
  }
  return 0;
}

// One round of the 128-byte transposition (top of this file): byte index p -> rotl7(p, 1).
inline void unpack_round(__m128i (&r)[8]) {
  __m128i t[8];
  for (int k = 0; k < 4; ++k) {
    t[2 * k] = _mm_unpacklo_epi8(r[k], r[k + 4]);
    t[2 * k + 1] = _mm_unpackhi_epi8(r[k], r[k + 4]);
  }
  for (int k = 0; k < 8; ++k) r[k] = t[k];
}

// Element size 8, n elements, n % 16 == 0 handled here; the caller does the rest.
void shuffle8_blocks(const std::byte* in, std::byte* out, size_t n) {
  for (size_t i = 0; i + 16 <= n; i += 16) {
    __m128i r[8];
    for (int k = 0; k < 8; ++k) r[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i * 8 + 16 * k));
    unpack_round(r);
    unpack_round(r);
    unpack_round(r);
    unpack_round(r);
    for (int j = 0; j < 8; ++j) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j * n + i), r[j]);
  }
}

void unshuffle8_blocks(const std::byte* in, std::byte* out, size_t n) {
  for (size_t i = 0; i + 16 <= n; i += 16) {
    __m128i r[8];
    for (int j = 0; j < 8; ++j) r[j] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + j * n + i));
    unpack_round(r);
    unpack_round(r);
    unpack_round(r);
    for (int k = 0; k < 8; ++k) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i * 8 + 16 * k), r[k]);
  }
}

// Shuffled scratch of the encoder threads (a whole chunk) and of the sample.
HugeBuffer& thread_plane_buffer() {
  thread_local HugeBuffer b;
  return b;
}

}  // namespace

void register_filters() {
  static const bool done = [] {
    static const H5Z_class2_t zstd = {H5Z_CLASS_T_VERS, kZstdFilter, 1, 1, "zstd (ferry)",
                                      nullptr, zstd_set_local, zstd_filter};
    return H5Zregister(&zstd) >= 0;
  }();
  (void)done;
}

namespace {

// byte_shuffle (to_planes) and byte_unshuffle: element i's byte j <-> planes[j * n + i]; the
// SSE2 blocks for element size 8, the rest element by element, trailing bytes copied.
void transpose_bytes(std::span<const std::byte> in, std::span<std::byte> out, size_t elem, bool to_planes) {
  const size_t n = elem ? in.size() / elem : 0;
  size_t i = 0;
  if (elem == 8) {
    (to_planes ? shuffle8_blocks : unshuffle8_blocks)(in.data(), out.data(), n);
    i = n / 16 * 16;
  }
  for (; i < n; ++i)
    for (size_t j = 0; j < elem; ++j) {
      if (to_planes)
        out[j * n + i] = in[i * elem + j];
      else
        out[i * elem + j] = in[j * n + i];
    }
  const size_t body = n * elem;
  std::memcpy(out.data() + body, in.data() + body, in.size() - body);
}

}  // namespace

void byte_shuffle(std::span<const std::byte> in, std::span<std::byte> out, size_t elem) {
  transpose_bytes(in, out, elem, true);
}

void byte_unshuffle(std::span<const std::byte> in, std::span<std::byte> out, size_t elem) {
  transpose_bytes(in, out, elem, false);
}

Encoded encode_chunk(std::span<const std::byte> in, HugeBuffer& out, double min_saved_rate,
                     bool shuffle) {
  ZSTD_CCtx* c = thread_cctx();
  if (!c) return {};
  shuffle = shuffle && in.size() % kShuffleElementBytes == 0;
  ChunkCoding coding = ChunkCoding::zstd;
  if (in.size() > 2 * kSampleBytes) {
    // The sample comes from the middle: the start of a chunk is often a page header. It is
    // compressed into a small buffer of its own: `out` grows to a whole chunk only for a
    // chunk that gets compressed.
    thread_local std::vector<std::byte> sample_out(ZSTD_compressBound(kSampleBytes));
    thread_local std::vector<std::byte> sample_planes(kSampleBytes);
    auto sample = in.subspan(in.size() / 2 / kShuffleElementBytes * kShuffleElementBytes, kSampleBytes);
    // A thread's first compression (and shuffle) also allocates and first-touches its
    // context and buffers: not timed.
    thread_local bool warm = false;
    if (!warm) {
      byte_shuffle(sample, sample_planes);
      (void)ZSTD_compressCCtx(c, sample_out.data(), sample_out.size(), sample_planes.data(), sample.size(),
                              kZstdLevel);
      warm = true;
    }
    const double floor = std::max(kMinSavedRate, min_saved_rate);
    size_t best = 0;  // compressed sample size of the chosen candidate (0: none qualified)
    for (ChunkCoding cand : {ChunkCoding::zstd, ChunkCoding::shuffle_zstd}) {
      if (cand == ChunkCoding::shuffle_zstd && !shuffle) continue;
      double t0 = thread_cpu_seconds();
      std::span<const std::byte> src = sample;
      if (cand == ChunkCoding::shuffle_zstd) {
        byte_shuffle(sample, sample_planes);
        src = sample_planes;
      }
      size_t s = ZSTD_compressCCtx(c, sample_out.data(), sample_out.size(), src.data(), src.size(), kZstdLevel);
      double cpu = std::max(thread_cpu_seconds() - t0, 1e-6);
      if (ZSTD_isError(s)) continue;
      double saved = 1.0 - static_cast<double>(s) / static_cast<double>(sample.size());
      double rate = saved * static_cast<double>(sample.size()) / cpu;
      if (saved < kMinSampleSaving || rate < floor) continue;
      // Shuffling must save 3 % more than plain zstd: unshuffling costs the reader a pass.
      if (best != 0 && s > best / 100 * 97) continue;
      best = s;
      coding = cand;
    }
    if (best == 0) return {};
  } else if (shuffle) {
    coding = ChunkCoding::shuffle_zstd;  // a small chunk: no sample, the words are likely numbers
  }
  size_t n = encode_as(coding, in, out);
  if (n == 0 || n > in.size() / 20 * 19) return {};
  return {coding, n};
}

size_t encode_as(ChunkCoding coding, std::span<const std::byte> in, HugeBuffer& out) {
  ZSTD_CCtx* c = thread_cctx();
  if (!c || coding == ChunkCoding::raw) return 0;
  std::span<const std::byte> src = in;
  if (coding == ChunkCoding::shuffle_zstd) {
    HugeBuffer& planes = thread_plane_buffer();
    if (!planes.ensure(in.size())) return 0;
    byte_shuffle(in, {planes.data(), in.size()});
    src = {planes.data(), in.size()};
  }
  if (!out.ensure(ZSTD_compressBound(in.size()))) return 0;
  size_t n = ZSTD_compressCCtx(c, out.data(), out.size(), src.data(), src.size(), kZstdLevel);
  return ZSTD_isError(n) ? 0 : n;
}

bool zstd_decode(std::span<const std::byte> in, std::span<std::byte> out) {
  unsigned long long n = ZSTD_getFrameContentSize(in.data(), in.size());
  if (n != out.size()) return false;
  ZSTD_DCtx* d = thread_dctx();
  if (!d) return false;
  size_t got = ZSTD_decompressDCtx(d, out.data(), out.size(), in.data(), in.size());
  return !ZSTD_isError(got) && got == out.size();
}

bool decode_chunk(ChunkCoding coding, std::span<const std::byte> in, std::span<std::byte> out,
                  HugeBuffer& scratch) {
  if (coding == ChunkCoding::zstd) return zstd_decode(in, out);
  if (coding != ChunkCoding::shuffle_zstd || out.size() % kShuffleElementBytes != 0) return false;
  if (!scratch.ensure(out.size())) return false;
  std::span<std::byte> planes{scratch.data(), out.size()};
  if (!zstd_decode(in, planes)) return false;
  byte_unshuffle(planes, out);
  return true;
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
