// SPDX-License-Identifier: Apache-2.0
// Byte streams stored as a 1-D uint8 chunked dataset written and read only with HDF5 direct
// chunk I/O, plus a u64 dataset of per-chunk XXH3-64 checksums beside it. /memory/pages and
// /blobs/data are both ChunkStreams.
//
//   logical stream:  |<-- chunk 0 (kChunkBytes) -->|<-- chunk 1 -->| ... |<- last, partial ->|
//   dataset extent:  exactly the stream length (the last chunk is stored zero-padded)
//   <name>_xxh3[i]:  XXH3-64 of chunk i's logical bytes (without padding)
//
// Writing (schema 1.3): the dataset's pipeline holds the zstd filter (32015, optional). The
// writer's own thread hashes each full chunk; if an encoder worker is idle the chunk goes to
// it (chunk_codec.hpp: zstd, or raw with filter mask bit 0 when compression would not pay),
// otherwise it is written raw at once. So compression only ever uses CPU the pool has spare
// and never makes the writer wait (except, at finish, for the chunks being compressed). All
// HDF5 calls stay on the writer's thread: finished chunks are written (H5Dwrite_chunk at their
// offset, in whatever order they finish) the next time it comes by. Reading: chunks of 1.0-1.2
// datasets (no filter) are raw; in 1.3 datasets a chunk is raw if its mask says the filter was
// skipped, else one zstd frame of exactly one chunk. Checksums cover logical bytes, so they do
// not depend on the encoding.
#pragma once

#include <cstddef>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "chunk_codec.hpp"
#include "h5_support.hpp"

namespace ferry::image {

// 4 MiB: large enough that HDF5's per-chunk cost (index entry, one pwrite) is negligible next
// to the copy (~1% at 256 MiB), small enough to keep the writer's and reader's buffers (one
// chunk each) and the granularity of a later incremental checkpoint modest.
inline constexpr size_t kChunkBytes = size_t{4} << 20;

// A buffer that does not zero itself on allocation (we fill it by memcpy).
struct ChunkBuffer {
  std::unique_ptr<std::byte[]> data;
  size_t size = 0;
  void allocate(size_t n) {
    if (size != n) {
      data.reset(new std::byte[n]);
      size = n;
    }
  }
  std::span<std::byte> span() { return {data.get(), size}; }
};

// Appends bytes; a full chunk is hashed, then encoded by an idle worker or written raw.
class ChunkWriter {
public:
  // Creates the dataset `data_path` (extent 0, unlimited). `file` is the image file id;
  // `fname` its path (also used to start writeback of written chunks early).
  static Result<std::unique_ptr<ChunkWriter>> create(hid_t file, std::string data_path,
                                                     std::string sums_path, std::string fname);
  ~ChunkWriter();
  Result<void> append(std::span<const std::byte> data);
  // Writes the partial last chunk, waits for every chunk, writes the checksums dataset,
  // closes the dataset.
  Result<void> finish();
  uint64_t size() const noexcept { return total_; }
  uint64_t stored_bytes() const noexcept { return stored_; }
  uint64_t raw_chunks() const noexcept { return raw_chunks_; }
  // The zero padding of a partial last chunk stored raw, as a file byte range (page aligned;
  // len 0 if none). Known after finish(); the writer punches it out of the file once HDF5
  // closed it, so a small image does not occupy a whole chunk on disk.
  struct Range {
    uint64_t offset = 0, len = 0;
  };
  Range padding() const noexcept { return padding_; }

private:
  // One chunk handed to a worker for encoding.
  struct Job {
    uint64_t index = 0;
    ChunkBuffer data;
    size_t used = 0;
    std::vector<std::byte> packed;
    size_t packed_size = 0;  // 0: store raw
  };
  Result<void> flush_chunk();
  // Writes the chunks the workers finished; with `all`, waits until none is left in flight.
  Result<void> write_finished(bool all);
  Result<void> write_chunk(uint64_t index, size_t used, const std::byte* bytes, size_t size, bool raw);
  ChunkBuffer take_buffer();
  hid_t file_ = H5I_INVALID_HID;
  std::string data_path_, sums_path_, fname_;
  h5::Id dset_;
  ChunkBuffer buf_;
  size_t fill_ = 0;
  uint64_t total_ = 0;    // logical bytes appended
  uint64_t stored_ = 0;   // encoded bytes handed to HDF5
  uint64_t raw_chunks_ = 0;
  uint64_t unsynced_ = 0; // bytes written since writeback was last started
  uint64_t extent_ = 0;   // the dataset's extent so far
  uint64_t next_index_ = 0;
  bool tail_raw_ = false; // the partial last chunk was stored raw
  std::vector<uint64_t> sums_;
  Range padding_;
  std::vector<ChunkBuffer> spare_;
  unsigned workers_ = 0;
  bool pool_checked_ = false;
  std::mutex mu_;
  std::condition_variable done_cv_;
  unsigned busy_ = 0;                         // jobs handed to the pool, not yet collected
  std::vector<std::shared_ptr<Job>> done_;    // finished by a worker, not yet written
  std::unique_ptr<WorkerPool> pool_;  // last: destroyed (joined) first
};

// Random and sequential reads; every chunk is checked on load. A read that covers a whole chunk
// from its start gets it straight in the caller's buffer (read, decoded and checked there);
// other reads go through a one-chunk cache, one per thread shared by all readers.
class ChunkReader {
public:
  // Opens both datasets, checks shapes: the extent must equal `expected_size` and the
  // checksum count must equal the number of chunks.
  static Result<std::unique_ptr<ChunkReader>> open(hid_t file, std::string data_path,
                                                   std::string sums_path, uint64_t expected_size,
                                                   std::string fname);
  ~ChunkReader();
  Result<void> read(uint64_t offset, std::span<std::byte> out);
  // Loads and checks every chunk in order; memory stays one chunk.
  Result<void> verify_all();
  // Loads and checks the chunks no earlier read or verify has checked.
  Result<void> verify_unread();
  uint64_t size() const noexcept { return size_; }
  uint64_t chunks() const noexcept { return sums_.size(); }
  size_t chunk_bytes() const noexcept { return chunk_; }

private:
  ChunkReader() = default;
  Result<void> fetch(uint64_t index, std::byte* dst);
  Result<void> load(uint64_t index);
  bool cached(uint64_t index) const;
  void forget();  // drop our chunk from the thread's cache
  uint64_t id_ = 0;
  std::string data_path_, fname_;
  bool zstd_ = false;  // the dataset's pipeline holds the zstd filter (schema 1.3)
  h5::Id dset_;
  size_t chunk_ = 0;
  uint64_t size_ = 0;
  std::vector<uint64_t> sums_;
  std::vector<bool> checked_;  // chunk i passed its checksum once
};

}  // namespace ferry::image
