// SPDX-License-Identifier: Apache-2.0
// Byte streams stored as a 1-D uint8 chunked dataset written and read only with HDF5 direct
// chunk I/O, plus a u64 dataset of per-chunk XXH3-64 checksums beside it. /memory/pages and
// /blobs/data are both ChunkStreams.
//
//   logical stream:  |<-- chunk 0 (kChunkBytes) -->|<-- chunk 1 -->| ... |<- last, partial ->|
//   dataset extent:  exactly the stream length (the last chunk is stored zero-padded)
//   <name>_xxh3[i]:  XXH3-64 of chunk i's logical bytes (without padding)
//
// Writing: chunk_pipeline.hpp (since 1.5 the dataset's pipeline is [shuffle (2, element size 8),
// zstd (32015)], both optional; each chunk's filter mask says which it skipped: chunk_codec.hpp).
// Reading: chunks of 1.0-1.2 datasets (no filter) are raw; in 1.3-1.4 datasets ([zstd]) a
// chunk is raw (mask 1) or one zstd frame of exactly one chunk (mask 0); in 1.5 ones raw (mask
// 3), zstd (mask 1) or shuffled then zstd (mask 0: decoded, then unshuffled). Checksums cover
// logical bytes, so they do not depend on the encoding.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "chunk_codec.hpp"
#include "ferry/common/hash.hpp"
#include "h5_support.hpp"

namespace ferry::image {

// 4 MiB: large enough that HDF5's per-chunk cost (index entry, one pwrite) is negligible next
// to the copy (~1% at 256 MiB), small enough to keep the writer's and reader's buffers (one
// chunk each) and the granularity of a later incremental checkpoint modest.
inline constexpr size_t kChunkBytes = size_t{4} << 20;

// A buffer that does not zero itself on allocation (we fill it by memcpy).
struct ChunkBuffer {
  HugeBuffer data;  // huge pages where possible: fresh 4 KiB pages are slow to first touch
  size_t size = 0;
  void allocate(size_t n) {
    if (size != n) {
      data = HugeBuffer(n);
      size = data.empty() ? 0 : n;
      if (data.empty()) throw std::bad_alloc();
    }
  }
  std::span<std::byte> span() { return {data.data(), size}; }
};

// A byte range of an image file (the zero padding of a partial last chunk stored raw: page
// aligned, len 0 if none), punched out of the file once HDF5 closed it.
struct FileRange {
  uint64_t offset = 0, len = 0;
};

// Random and sequential reads; every chunk is checked on load. A read that covers a whole chunk
// from its start gets it straight in the caller's buffer (read, decoded and checked there;
// several whole chunks are decoded in parallel by a small pool of decode workers, HDF5 calls
// staying on the caller's thread; FERRY_DECODERS=N sets the pool size, 0 = none, the default below 4 CPUs); other reads
// go through a one-chunk cache, one per thread shared by all readers.
class ChunkReader {
public:
  // Opens both datasets, checks shapes: the extent must equal `expected_size` and the
  // checksum count must equal the number of chunks.
  static Result<std::unique_ptr<ChunkReader>> open(hid_t file, std::string data_path,
                                                   std::string sums_path, uint64_t expected_size,
                                                   std::string fname);
  ~ChunkReader();
  Result<void> read(uint64_t offset, std::span<std::byte> out);
  // Bytes [offset, offset + len) of the data into `out`, for read_scattered.
  struct Piece {
    uint64_t offset = 0;
    std::byte* out = nullptr;
    size_t len = 0;
  };
  // Streams the pieces (sorted by offset, not overlapping) to their `out`, anywhere in memory,
  // continuing across calls: each call's first piece must lie at or after the last one of the
  // call before. A raw chunk is read with one preadv per call straight into the pieces, bytes
  // no piece asks for into scratch, its checksum taken over all of them in order; it is checked
  // when the stream moves to another chunk or at finish_scattered(), which reads the rest of
  // the chunk it is in. Any other chunk is loaded and checked whole, then copied from.
  // Chunks the stream jumps over are not read (verify_unread reads them).
  Result<void> read_scattered(std::span<const Piece> pieces);
  Result<void> finish_scattered();
  // Loads and checks every chunk in order; memory stays one chunk.
  Result<void> verify_all();
  // Loads and checks the chunks no earlier read or verify has checked.
  Result<void> verify_unread();
  uint64_t size() const noexcept { return size_; }
  uint64_t chunks() const noexcept { return sums_.size(); }
  size_t chunk_bytes() const noexcept { return chunk_; }

private:
  ChunkReader() = default;
  struct Stored {
    ChunkCoding coding = ChunkCoding::raw;
    size_t size = 0;
  };
  Result<Stored> read_stored(uint64_t index, std::byte* dst, ChunkBuffer& stored);
  Result<void> finish_chunk(uint64_t index, const Stored& st, const ChunkBuffer& stored, std::byte* dst,
                            HugeBuffer& planes) const;
  Result<void> fetch(uint64_t index, std::byte* dst);
  Result<void> fetch_many(uint64_t first, size_t n, std::byte* dst);
  Result<void> load(uint64_t index);
  // read_scattered's position: the chunk it is in and how far it got.
  struct Stream {
    uint64_t index = UINT64_MAX;  // none open
    uint64_t pos = 0;             // next stream offset in the chunk
    uint64_t addr = 0;            // file address of the raw chunk
    bool direct = false;          // raw, read from the file; else whole in `copy`
    std::unique_ptr<hash::Xxh3Stream> hash;
    ChunkBuffer copy;             // the whole chunk (not direct)
  };
  Result<void> open_stream(uint64_t index);
  Result<void> stream_read(std::vector<struct iovec>& iov, uint64_t end);
  Result<void> close_stream();
  Stream stream_;
  bool cached(uint64_t index) const;
  void forget();  // drop our chunk from the thread's cache
  uint64_t id_ = 0;
  std::string data_path_, fname_;
  // The dataset's filter pipeline: none (1.0-1.2), [zstd] (1.3-1.4), [shuffle, zstd] (1.5).
  enum class Pipeline { none, zstd, shuffle_zstd };
  std::optional<ChunkCoding> coding_of(uint32_t mask) const;
  Pipeline pipeline_ = Pipeline::none;
  h5::Id dset_;
  int fd_ = -1;  // the file's descriptor (HDF5's sec2 driver), for read_scattered; -1: none
  size_t chunk_ = 0;
  uint64_t size_ = 0;
  std::vector<uint64_t> sums_;
  std::vector<bool> checked_;  // chunk i passed its checksum once
};

// The calling thread's read buffers, shared by every ChunkReader of the thread, as a handle
// (ImageSource::take_thread_read_buffers); the thread gets new ones on its next read.
std::shared_ptr<void> take_thread_read_buffers();
// Makes `buffers` (from take_thread_read_buffers, on another thread) the calling thread's.
void adopt_thread_read_buffers(std::shared_ptr<void> buffers);

}  // namespace ferry::image
