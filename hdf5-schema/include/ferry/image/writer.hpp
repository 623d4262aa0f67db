// SPDX-License-Identifier: Apache-2.0
// ImageWriter: the ImageSink that stores one process image as an HDF5 file (SCHEMA.md).
// Pages and blob bytes stream into 4 MiB chunks written with HDF5 direct chunk writes; the
// metadata is written by finish(), which also flushes and fsyncs, so the file is durable when
// finish() returns. Memory use is two chunk buffers plus the metadata. Not thread-safe (HDF5
// here is built without thread safety): one thread at a time across all images.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"

namespace ferry::image {

class ImageWriter final : public ImageSink {
public:
  // Creates (or truncates) `path` with mode 0600. The directory must exist.
  static Result<std::unique_ptr<ImageWriter>> create(const std::string& path);
  // Without a successful finish() the file is left incomplete (no header attributes): readers
  // refuse it, and the caller should remove it.
  ~ImageWriter() override;
  ImageWriter(const ImageWriter&) = delete;
  ImageWriter& operator=(const ImageWriter&) = delete;

  // addr and data.size() must be multiples of the page size (errc::protocol otherwise).
  Result<void> append_pages(uint64_t addr, std::span<const std::byte> data) override;
  // Zero-copy append_pages (image_io.hpp): the buffer is the free part of the next chunk
  // buffer (never empty). Capture reads a snapshot's pages straight into the chunk written.
  Result<std::span<std::byte>> page_buffer(size_t max) override;
  Result<void> commit_pages(uint64_t addr, size_t n) override;
  // Blobs are written one after another: begin_blob refuses while the previous blob has not
  // received all its bytes, and append_blob_data accepts only the blob begun last.
  Result<uint32_t> begin_blob(uint64_t size, const std::string& name) override;
  Result<void> append_blob_data(uint32_t id, std::span<const std::byte> data) override;
  // Writes everything else. header.schema_version and header.record_kinds are set by the
  // writer (the version it implements, the kinds it stored); page_runs and blobs come from
  // what was appended. Every thread's xsave must be header.xsave_size bytes, and
  // header.page_size must be the page size pages were appended with.
  Result<void> finish(const ProcessImage& image) override;

  // Bytes of encoded chunk data (pages and blobs) handed to HDF5 so far; the file adds a few
  // KiB of metadata.
  uint64_t bytes_written() const;
  const std::string& path() const;

private:
  struct Impl;
  explicit ImageWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::image
