// SPDX-License-Identifier: Apache-2.0
// How one chunk of a chunk stream is encoded (SCHEMA.md "Chunk streams"). Since schema 1.5 the
// stream's HDF5 filter pipeline is [shuffle (id 2, element size 8), zstd (id 32015)], both
// optional, and each chunk is stored one of three ways, named by its filter mask:
//
//   shuffle_zstd  mask 0  bytes split into 8 planes (byte 0 of every 8-byte word, then byte 1,
//                         ...; HDF5's own shuffle), then one zstd frame: smooth doubles, whose
//                         sign/exponent/high-mantissa planes are nearly constant
//   zstd          mask 1  (shuffle skipped) one zstd frame: text, code, tables
//   raw           mask 3  (both skipped) the bytes as they are
//
// The zstd frame carries the content size in its header (the format of the community HDF5 zstd
// plugin), so h5dump/h5py with that plugin (and HDF5's built-in shuffle) read the images.
// 1.3-1.4 streams have the pipeline [zstd]: mask 0 zstd, mask 1 raw.
//
// Encoding rule (encode_chunk): compress a 64 KiB sample from the middle of the chunk twice,
// plainly and shuffled, timing each on the thread's CPU clock. A candidate qualifies if its
// sample shrank by at least kMinSampleSaving AND the bytes it saves per CPU-second (shuffle
// included) reach kMinSavedRate and the caller's writer rate (a chunk that compresses by 16 %
// at 70 MB/s, as smooth doubles do plainly at level 1 on the project VM, saves 11 MB per
// CPU-second: writing those bytes costs far less than compressing them; shuffled, the same
// doubles shrink ~2x at ~1 GB/s). Of the qualifying candidates the one that saves most bytes
// encodes the whole chunk (shuffled only if it saves 3 % of the sample more than plain zstd:
// unshuffling costs the reader a pass), kept only if it saves at least 5 %; none qualified:
// raw, without compressing the rest.
// Also a small FIFO worker pool, and the number of encoder threads of chunk_pipeline.hpp.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "ferry/common/huge_buffer.hpp"

#include <hdf5.h>

namespace ferry::image {

inline constexpr H5Z_filter_t kZstdFilter = 32015;
inline constexpr H5Z_filter_t kShuffleFilter = H5Z_FILTER_SHUFFLE;  // 2, built into HDF5
inline constexpr unsigned kShuffleElementBytes = 8;
inline constexpr int kZstdLevel = 1;

// How a chunk is stored, and its filter mask in each pipeline (bit i: filter i skipped).
enum class ChunkCoding : uint8_t { raw, zstd, shuffle_zstd };
// Pipeline [shuffle, zstd] (1.5+).
inline constexpr uint32_t kMaskShuffleZstd = 0, kMaskZstd = 1, kMaskRaw = 3;
// Pipeline [zstd] (1.3-1.4).
inline constexpr uint32_t kMaskZstdOnlyPipeline = 0, kMaskRawZstdOnlyPipeline = 1;
inline constexpr uint32_t filter_mask(ChunkCoding c) {
  return c == ChunkCoding::raw ? kMaskRaw : c == ChunkCoding::zstd ? kMaskZstd : kMaskShuffleZstd;
}

// Registers our zstd filter (32015) with HDF5 in this process (once; later calls are no-ops),
// so datasets with it can be created (and read through HDF5's own pipeline). Its set_local
// callback sets the element size of a shuffle filter before it in the pipeline to 8 (HDF5's
// built-in shuffle would store the type size, 1 for a uint8 stream).
void register_filters();

// HDF5's shuffle of `in` with element size `elem` into `out` (same size): byte j of element i
// goes to out[j * n + i], n = in.size() / elem; trailing bytes (in.size() % elem) are copied
// as they are. unshuffle is its inverse. Element size 8 runs 128 bytes at a time in SSE2.
void byte_shuffle(std::span<const std::byte> in, std::span<std::byte> out, size_t elem = kShuffleElementBytes);
void byte_unshuffle(std::span<const std::byte> in, std::span<std::byte> out,
                    size_t elem = kShuffleElementBytes);

// Sample rule thresholds (see the top of this file).
inline constexpr double kMinSampleSaving = 0.10;
inline constexpr double kMinSavedRate = 100e6;  // bytes saved per CPU-second of compression

// Encodes `in` into `out` (resized as needed) when that pays (rule at the top of this file);
// returns the coding and the encoded size (0 for raw: store `in` itself). `min_saved_rate`
// (bytes saved per CPU-second, at least kMinSavedRate) lets the caller demand more: the chunk
// pipeline passes the rate at which its writer actually writes, so a chunk is compressed only
// when encoding it takes less time than writing the bytes it saves. `shuffle` false: never
// shuffle (a 1.3-1.4 pipeline). Thread-safe (contexts and scratch per thread).
struct Encoded {
  ChunkCoding coding = ChunkCoding::raw;
  size_t size = 0;
};
Encoded encode_chunk(std::span<const std::byte> in, HugeBuffer& out,
                     double min_saved_rate = kMinSavedRate, bool shuffle = true);
// Encodes `in` with `coding` (not raw) into `out` whatever it saves; the encoded size, 0 on
// error. encode_chunk's last step; tests use it to build chunks of a given coding.
size_t encode_as(ChunkCoding coding, std::span<const std::byte> in, HugeBuffer& out);
// Decompresses one zstd frame into exactly out.size() bytes; false if the frame is damaged
// or its content size differs.
bool zstd_decode(std::span<const std::byte> in, std::span<std::byte> out);
// Decodes a stored chunk of `coding` (not raw) into exactly out.size() bytes; `scratch` holds
// the shuffled planes (reallocated when too small). False if damaged.
bool decode_chunk(ChunkCoding coding, std::span<const std::byte> in, std::span<std::byte> out,
                  HugeBuffer& scratch);

// A fixed set of worker threads running submitted tasks in FIFO order. The destructor waits
// for queued tasks and joins the workers.
class WorkerPool {
public:
  explicit WorkerPool(unsigned threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  void submit(std::function<void()> task);
  unsigned size() const noexcept { return static_cast<unsigned>(threads_.size()); }

private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// Workers for chunk encoding: one per CPU but one (the caller reading the process needs a CPU
// of its own; the writer thread mostly waits for the kernel), at least 1, at most 8.
// FERRY_ENCODERS=N overrides it (0: never compress).
unsigned encoder_threads();

}  // namespace ferry::image
