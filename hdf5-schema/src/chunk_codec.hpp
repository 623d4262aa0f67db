// SPDX-License-Identifier: Apache-2.0
// How one chunk of a chunk stream is encoded: zstd (HDF5 registered filter 32015, a plain
// zstd frame with the content size in its header, the format of the community HDF5 zstd
// plugin, so h5dump/h5py with that plugin read the images), or raw when compression would not
// pay. And a small FIFO worker pool, and the number of encoder threads of chunk_pipeline.hpp.
//
// Encoding rule (zstd_encode): compress a 64 KiB sample from the middle of the chunk first and
// time it. The chunk is stored raw, without compressing the rest, unless the sample shrank by
// at least kMinSampleSaving AND the bytes it saves per CPU-second of compression reach
// kMinSavedRate (a chunk that compresses by 16 % at 70 MB/s, as smooth doubles with full
// mantissas do at level 1 on the project VM, saves 11 MB per CPU-second: writing those bytes
// costs far less than compressing them). Otherwise the whole chunk is compressed and the
// result kept only if it saves at least 5 %. A raw chunk has bit 0 of its HDF5 filter mask set
// (filter skipped), so HDF5 and our reader both know not to decompress it.
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

#include <hdf5.h>

namespace ferry::image {

inline constexpr H5Z_filter_t kZstdFilter = 32015;
inline constexpr int kZstdLevel = 1;
// HDF5 filter mask of a chunk stored without its zstd filter (bit 0: first filter skipped).
inline constexpr uint32_t kRawChunkMask = 1;

// Registers our zstd filter implementation with HDF5 in this process (once; later calls are
// no-ops), so datasets with filter 32015 can be created and read through HDF5's own pipeline.
void register_zstd_filter();

// Sample rule thresholds (see the top of this file).
inline constexpr double kMinSampleSaving = 0.10;
inline constexpr double kMinSavedRate = 100e6;  // bytes saved per CPU-second of compression

// Compresses `in` into `out` (resized as needed) when that pays; returns the compressed size,
// or 0 to store the chunk raw. `min_saved_rate` (bytes saved per CPU-second of compression,
// at least kMinSavedRate) lets the caller demand more: the chunk pipeline passes the rate at
// which its writer actually writes, so a chunk is compressed only when compressing it takes
// less time than writing the bytes it saves. Thread-safe (one zstd context per thread).
size_t zstd_encode(std::span<const std::byte> in, std::vector<std::byte>& out,
                   double min_saved_rate = kMinSavedRate);
// Decompresses one zstd frame into exactly out.size() bytes; false if the frame is damaged
// or its content size differs.
bool zstd_decode(std::span<const std::byte> in, std::span<std::byte> out);

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
