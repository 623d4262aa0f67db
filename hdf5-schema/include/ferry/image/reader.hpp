// SPDX-License-Identifier: Apache-2.0
// ImageReader: the ImageSource over one HDF5 image file. open() reads and checks all metadata
// (magic, version, ABI, record kinds, every metadata checksum, shapes of the chunk streams);
// page and blob bytes are read on demand, chunk by chunk, each chunk checked against its
// checksum, with a one-chunk cache per stream. Debian's HDF5 is built without thread safety:
// all ImageReader/ImageWriter calls of a process must come from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"

namespace ferry::image {

// One check made while opening or validating an image, for `ferry inspect`.
struct ImageCheck {
  std::string name;    // "magic", "schema version", "checksum /memory/regions", ...
  bool ok = false;
  std::string detail;  // what was found, or why it failed
};

class ImageReader final : public ImageSource {
public:
  // Errors: errno (file missing, unreadable); errc::image_foreign (not HDF5, no magic, ABI
  // other than x86_64); errc::image_version (other major version, unknown record kinds, chunk
  // encoding unknown to this build); errc::image_corrupt (missing or unreadable dataset or
  // attribute, truncated file, checksum mismatch, inconsistent sizes). Messages name the file
  // and the dataset. If `checks` is given, every check made is appended to it (also the
  // failing one).
  static Result<std::unique_ptr<ImageReader>> open(const std::string& path,
                                                   std::vector<ImageCheck>* checks = nullptr);
  // Header, page runs and the pages stream only (other tables empty; the header and page runs
  // checked as by open()): for the earlier images an incremental image refers to (chain.hpp).
  static Result<std::unique_ptr<ImageReader>> open_pages_only(const std::string& path);
  ~ImageReader() override;
  ImageReader(const ImageReader&) = delete;
  ImageReader& operator=(const ImageReader&) = delete;

  const ProcessImage& image() const override;
  Result<void> read_pages(uint64_t addr, std::span<std::byte> out) override;
  StoragePos storage_pos(uint64_t addr) const override;
  Result<void> read_pages_v(std::span<const PageRead> reads) override;
  bool reads_scattered() const override { return true; }
  Result<void> read_stored_v(std::span<const StoredRead> reads) override;
  Result<void> finish_stored_reads() override;
  Result<void> read_blob(uint32_t id, uint64_t offset, std::span<std::byte> out) override;
  Result<void> verify_all() override;
  Result<void> verify_unread() override;
  std::shared_ptr<void> take_thread_read_buffers() override;
  void adopt_thread_read_buffers(std::shared_ptr<void> buffers) override;

  const std::string& path() const;
  // Logical bytes of /memory/pages and /blobs/data, and their chunk counts.
  uint64_t page_bytes() const;
  uint64_t blob_bytes() const;
  uint64_t page_chunks() const;
  uint64_t blob_chunks() const;

private:
  struct Impl;
  explicit ImageReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::image
