// SPDX-License-Identifier: Apache-2.0
// Byte streams stored as a 1-D uint8 chunked dataset written and read only with HDF5 direct
// chunk I/O, plus a u64 dataset of per-chunk XXH3-64 checksums beside it. /memory/pages and
// /blobs/data are both ChunkStreams.
//
//   logical stream:  |<-- chunk 0 (kChunkBytes) -->|<-- chunk 1 -->| ... |<- last, partial ->|
//   dataset extent:  exactly the stream length (the last chunk is stored zero-padded)
//   <name>_xxh3[i]:  XXH3-64 of chunk i's logical bytes (without padding)
//
// encode_chunk()/decode_chunk() are the one place that decides how a chunk is stored: today
// raw (filter mask 0, no filter in the pipeline); a zstd pipeline (HDF5 filter 32015) slots in
// there and in make_dcpl() without touching callers. Checksums cover logical bytes, so they do
// not change when the encoding does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

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

// Appends bytes; a full chunk is encoded and written at once.
class ChunkWriter {
public:
  // Creates the dataset `data_path` (extent 0, unlimited). `file` is the image file id.
  static Result<std::unique_ptr<ChunkWriter>> create(hid_t file, std::string data_path,
                                                     std::string sums_path, std::string fname);
  Result<void> append(std::span<const std::byte> data);
  // Writes the partial last chunk and the checksums dataset, closes the dataset.
  Result<void> finish();
  uint64_t size() const noexcept { return total_; }
  uint64_t stored_bytes() const noexcept { return stored_; }
  // The zero padding of a partial last chunk, as a file byte range (page aligned; len 0 if
  // none). Known after finish(); the writer punches it out of the file once HDF5 closed it,
  // so a small image does not occupy a whole chunk on disk.
  struct Range {
    uint64_t offset = 0, len = 0;
  };
  Range padding() const noexcept { return padding_; }

private:
  Result<void> flush_chunk();
  hid_t file_ = H5I_INVALID_HID;
  std::string data_path_, sums_path_, fname_;
  h5::Id dset_;
  ChunkBuffer buf_;
  size_t fill_ = 0;
  uint64_t total_ = 0;    // logical bytes appended
  uint64_t stored_ = 0;   // encoded bytes handed to HDF5
  std::vector<uint64_t> sums_;
  Range padding_;
};

// Random and sequential reads with a one-chunk cache; every chunk is checked on load.
class ChunkReader {
public:
  // Opens both datasets, checks shapes: the extent must equal `expected_size` and the
  // checksum count must equal the number of chunks.
  static Result<std::unique_ptr<ChunkReader>> open(hid_t file, std::string data_path,
                                                   std::string sums_path, uint64_t expected_size,
                                                   std::string fname);
  Result<void> read(uint64_t offset, std::span<std::byte> out);
  // Loads and checks every chunk in order; memory stays one chunk.
  Result<void> verify_all();
  uint64_t size() const noexcept { return size_; }
  uint64_t chunks() const noexcept { return sums_.size(); }
  size_t chunk_bytes() const noexcept { return chunk_; }

private:
  Result<void> load(uint64_t index);
  std::string data_path_, fname_;
  h5::Id dset_;
  size_t chunk_ = 0;
  uint64_t size_ = 0;
  std::vector<uint64_t> sums_;
  ChunkBuffer stored_, cache_;
  uint64_t cached_ = UINT64_MAX;
};

}  // namespace ferry::image
