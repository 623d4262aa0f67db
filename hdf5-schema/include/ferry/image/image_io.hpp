// SPDX-License-Identifier: Apache-2.0
// The streaming seams between capture/restore (ckptlib) and the HDF5 image (this folder):
// capture pushes memory bytes into an ImageSink while the process is frozen and hands the
// metadata at the end; restore pulls them from an ImageSource. Neither side buffers a whole
// image: pages move in batches of a few MiB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "ferry/common/result.hpp"
#include "ferry/image/model.hpp"

namespace ferry::image {

class ImageSink {
public:
  virtual ~ImageSink() = default;
  // Appends the bytes of consecutive pages starting at addr (addr and size page aligned).
  // Successive calls may continue one run (addr == previous end); the sink merges them.
  virtual Result<void> append_pages(uint64_t addr, std::span<const std::byte> data) = 0;
  // Optional zero-copy form of append_pages: page_buffer(max) hands out a buffer of at most
  // max bytes that the caller fills, then commit_pages(addr, n) appends its first n bytes as
  // the pages at addr (page aligned), as append_pages would. A sink that does not offer its
  // buffers returns an empty span (this default); the caller then uses append_pages.
  virtual Result<std::span<std::byte>> page_buffer(size_t /*max*/) { return std::span<std::byte>{}; }
  virtual Result<void> commit_pages(uint64_t /*addr*/, size_t /*n*/) {
    return fail(errc::protocol, "this image sink does not hand out page buffers");
  }
  // Starts a new blob of the given total size; returns its id. Its bytes follow in
  // append_blob_data calls, in order, exactly `size` bytes in total.
  virtual Result<uint32_t> begin_blob(uint64_t size, const std::string& name) = 0;
  virtual Result<void> append_blob_data(uint32_t id, std::span<const std::byte> data) = 0;
  // Writes the metadata (image.page_runs and image.blobs are ignored: the sink fills them
  // from what was appended), the checksums, flushes and fsyncs. Nothing may follow.
  virtual Result<void> finish(const ProcessImage& image) = 0;
};

// Where the bytes of a page lie in an ImageSource: in which stored stream (`store`: e.g. one
// image file's pages), at which byte of it, and that stream's chunk size (0: not chunked).
struct StoragePos {
  uint32_t store = 0;
  uint64_t offset = 0;
  uint64_t chunk = 0;
};

// One read of ImageSource::read_pages_v: the bytes of the pages at addr into out.
struct PageRead {
  uint64_t addr = 0;
  std::span<std::byte> out;
};

// One read of ImageSource::read_stored_v: the bytes stored at `offset` of store `store`
// (StoragePos terms), which are the pages at image address `addr`, into out.
struct StoredRead {
  uint32_t store = 0;
  uint64_t offset = 0;
  uint64_t addr = 0;
  std::span<std::byte> out;
};

class ImageSource {
public:
  virtual ~ImageSource() = default;
  // The whole metadata including page_runs and blobs.
  virtual const ProcessImage& image() const = 0;
  // Reads bytes of pages covered by page runs: [addr, addr+out.size()) must lie inside one
  // run. Verifies the checksum of every chunk it touches (image_corrupt on mismatch).
  virtual Result<void> read_pages(uint64_t addr, std::span<std::byte> out) = 0;
  // Where the page at addr (inside a page run) is stored. Reading page ranges sorted by
  // (store, offset), in pieces that start and end on chunk boundaries, reads each chunk once
  // and straight into the caller's buffer. Default: one store in address order, no chunks.
  virtual StoragePos storage_pos(uint64_t addr) const { return {0, addr, 0}; }
  // Several read_pages at once (same checks). Reads that follow each other both in storage
  // and in memory (as the restore's page filler lays them out) may become one read, so whole
  // chunks go straight into `out`. Default: one read_pages each.
  virtual Result<void> read_pages_v(std::span<const PageRead> reads) {
    for (const auto& r : reads) FERRY_TRY_VOID(read_pages(r.addr, r.out));
    return {};
  }
  // Whether read_stored_v streams raw chunks straight into scattered pieces (else it is
  // read_pages, chunk by chunk through a cache, plus a copy).
  virtual bool reads_scattered() const { return false; }
  // Reads given by where their bytes are stored, each to its own place in memory (the
  // restore's destination-ordered batches): sorted by (store, offset), not overlapping, and
  // each store's reads continue, call after call, at or after where its previous call ended.
  // A chunk is checked when the reads leave it or at finish_stored_reads(), which reads the
  // rest of the chunks still open: call it after the last read_stored_v. Default: read_pages.
  virtual Result<void> read_stored_v(std::span<const StoredRead> reads) {
    for (const auto& r : reads) FERRY_TRY_VOID(read_pages(r.addr, r.out));
    return {};
  }
  virtual Result<void> finish_stored_reads() { return {}; }
  // Reads blob bytes [offset, offset+out.size()).
  virtual Result<void> read_blob(uint32_t id, uint64_t offset, std::span<std::byte> out) = 0;
  // Reads every chunk of pages and blobs and checks its checksum, without keeping them.
  virtual Result<void> verify_all() = 0;
  // The same for the chunks no read_pages/read_blob/verify call has checked yet: after a
  // restore read what it needed (each chunk checked as it was read), this completes the
  // check of the whole image without reading any chunk twice.
  virtual Result<void> verify_unread() { return verify_all(); }
  // The calling thread's read buffers (an opaque handle; nullptr if the source keeps none): a
  // thread that reads this source next (the restore's lazy page server, after the restoring
  // thread's last read) adopts them, so its first reads find warm buffers, often holding the
  // chunk they need, instead of fresh pages (a first write to a fresh page costs a hypervisor
  // fault on the project VM: 8 MiB of them delayed the first page fault served by 30-40 ms).
  virtual std::shared_ptr<void> take_thread_read_buffers() { return nullptr; }
  virtual void adopt_thread_read_buffers(std::shared_ptr<void> buffers) { (void)buffers; }
};

// Values written to SelfCheckpoint::flag_addr (kept in sync with ckptlib/include/ferry/ferry.h).
inline constexpr int32_t kSelfResumed = 1;
inline constexpr int32_t kSelfRestarted = 2;
inline constexpr int32_t kSelfFailed = 3;

}  // namespace ferry::image
