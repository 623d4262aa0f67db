// SPDX-License-Identifier: Apache-2.0
// ChunkPipeline: the write side of a chunk stream (SCHEMA.md "Chunk streams"; the read side is
// ChunkReader in chunk_store.hpp). Three stages run at once, so reading the process, hashing
// and compressing, and the disk overlap instead of taking turns:
//
//   caller thread:  append() copies bytes into the current 4 MiB chunk buffer; a full chunk is
//                   queued (`filled`). It blocks only when every buffer is in flight
//                   (kMaxBuffers chunks: back-pressure from the disk).
//   encoder pool:   (encoder_threads(), chunk_codec.hpp) an idle worker takes the NEWEST
//                   queued chunk (the one the writer would reach last), hashes it and encodes
//                   it (shuffle+zstd or zstd if its sample saves bytes faster than the writer
//                   writes them, else raw: chunk_codec.hpp) and hands it to the writer.
//   writer thread:  writes chunks the encoders finished first; while every encoder is busy it
//                   takes the OLDEST queued chunk, hashes it and writes it raw: compression
//                   never holds a chunk back that the writer could write, and the writer never
//                   waits for an encoder while a chunk is ready. Each chunk goes to HDF5 with
//                   H5Dwrite_chunk at its own offset (file order does not matter); every
//                   kWritebackBytes the new end of the file is handed to the disk
//                   (sync_file_range WRITE, never waiting), so the final fsync finds little
//                   left and the disk writes while the process is still being read.
//
// Direct I/O: a raw 4 MiB chunk is written with O_DIRECT (set on HDF5's own sec2 descriptor
// around that one H5Dwrite_chunk) when the file system allows it at 4 KiB alignment: the bytes
// go from the (4 KiB aligned, reused) chunk buffer to the disk without a page-cache copy. On the
// project VM a page-cache write first-touches fresh guest pages (1 GiB: 4-9 s buffered vs
// 1-2.7 s O_DIRECT, dd conv=fsync 1.5-12 s in the same minutes), and the copy takes a CPU
// from reading and compressing. The writer's file access list (writer.cpp) aligns allocations
// of >= 4 MiB (raw chunks) to 4 KiB and keeps HDF5's metadata cache from evicting (so no
// metadata write happens inside a direct chunk write); compressed chunks and metadata stay
// buffered. A direct write that fails is retried buffered and direct I/O is off for the rest of
// the stream. Durability is unchanged: the image is fsynced at the end (device cache flush);
// while direct chunks are written, a flusher thread runs fdatasync after each kSyncBytes of
// them, so the device cache is flushed while the process is still read and the final fsync
// finds little left (on the project VM it was 0.3-0.6 s per GiB at the end).
// FERRY_WRITE_DIRECT=0 turns it off.
//
// Buffer reuse: the chunk buffers of a finished stream go back to a process-wide pool (at most
// kMaxBuffers, 48 MiB) and the next stream of the process (the next checkpoint of a job's
// supervisor) takes them from there. On the project VM the first write to a fresh anonymous
// page costs a hypervisor fault: reading 100 MiB of scattered 64 KiB pieces of a snapshot ran
// at 0.23 GB/s into fresh buffers and 3.2 GB/s into reused ones (an incremental checkpoint
// spent most of its time there). FERRY_WRITE_KEEP_BUFFERS=0 frees them after each stream.
//
// HDF5 (built thread-safe here) is called by the writer thread while the stream is open and by
// the caller only before the first chunk and after finish() joined the writer.
// FERRY_WRITE_TRACE=1 prints one line per stream at finish: chunks raw/compressed, bytes, and
// the seconds each stage spent working and waiting.
#pragma once

#include <atomic>
#include <cstdlib>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "chunk_store.hpp"
#include "ferry/common/huge_buffer.hpp"
#include "ferry/common/result.hpp"
#include "ferry/common/unique_fd.hpp"

namespace ferry::image {

class ChunkPipeline {
public:
  // Creates the dataset `data_path` (extent 0, unlimited, the stream's filter pipeline) in
  // `file` (the image at `fname`).
  static Result<std::unique_ptr<ChunkPipeline>> create(hid_t file, std::string data_path,
                                                       std::string sums_path, std::string fname);
  ~ChunkPipeline();  // stops and joins the threads (a stream not finished is abandoned)
  ChunkPipeline(const ChunkPipeline&) = delete;
  ChunkPipeline& operator=(const ChunkPipeline&) = delete;

  // Copies `data` into the stream. Fails with the writer's error once a write failed.
  Result<void> append(std::span<const std::byte> data);
  // Zero-copy appends: the free part of the current chunk buffer, at most `max` bytes (never
  // empty), for the caller to fill itself; commit(n) then appends its first n bytes (n <= the
  // span's size) as append() would. Another fill_buffer() before commit() returns the same span.
  Result<std::span<std::byte>> fill_buffer(size_t max);
  Result<void> commit(size_t n);
  // Queues the partial last chunk, waits for every chunk to be written, writes the checksums
  // dataset and closes the dataset.
  Result<void> finish();

  uint64_t size() const noexcept { return total_; }
  // Encoded bytes handed to HDF5 (exact after finish()).
  uint64_t stored_bytes() const noexcept;
  // The zero padding of a raw partial last chunk as a file range (see FileRange).
  FileRange padding() const noexcept { return padding_; }

  // At most this many chunk buffers (4 MiB each) per stream: the caller's, the queued ones,
  // the ones being encoded or written.
  static constexpr unsigned kMaxBuffers = 12;
  // Writeback of the file is started each time this many bytes were written.
  static constexpr uint64_t kWritebackBytes = uint64_t{16} << 20;
  // With direct I/O, an fdatasync is started (on the flusher thread) each time this many bytes
  // were written.
  static constexpr uint64_t kSyncBytes = uint64_t{256} << 20;

private:
  struct Chunk {
    uint64_t index = 0;
    HugeBuffer data;  // 2 MiB aligned (O_DIRECT needs 4 KiB), in huge pages where possible
    size_t used = 0;
    uint64_t sum = 0;
    bool hashed = false;
    HugeBuffer packed;  // encoded bytes (grown once to a whole chunk's bound, then reused)
    size_t packed_size = 0;  // 0: raw
    ChunkCoding coding = ChunkCoding::raw;
  };
  ChunkPipeline() = default;
  // The process-wide pool of chunk buffers left by finished streams (see the top).
  static std::vector<std::unique_ptr<Chunk>>& pool();  // under pool_mu (chunk_pipeline.cpp)
  static std::unique_ptr<Chunk> take_pooled();
  static void return_pooled(std::vector<std::unique_ptr<Chunk>>& chunks);
  Result<void> queue_current();
  // Makes current_ a chunk buffer with room (a spare one, a new one, or waits for one).
  Result<void> ensure_current();
  void start_threads();
  void writer_loop();
  void encoder_loop();
  // Writer thread only.
  Result<void> write_chunk(Chunk& c);
  // H5Dwrite_chunk of `size` bytes at `offset`, with O_DIRECT on the file's descriptor if
  // `direct`; false on failure.
  bool h5_write(const Chunk& c, hsize_t offset, size_t size, const std::byte* bytes, bool direct);
  void start_writeback();
  void flusher_loop();
  void stop_threads();

  hid_t file_ = H5I_INVALID_HID;
  std::string data_path_, sums_path_, fname_;
  h5::Id dset_;

  // Caller side.
  std::unique_ptr<Chunk> current_;
  uint64_t total_ = 0;
  uint64_t next_index_ = 0;
  bool started_ = false;
  FileRange padding_;

  // Shared, under mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Chunk>> filled_;   // queued, oldest first
  std::vector<std::unique_ptr<Chunk>> encoded_;  // hashed and encoded, for the writer
  std::vector<std::unique_ptr<Chunk>> spare_;    // written; buffers to reuse
  unsigned buffers_ = 0;   // chunk buffers allocated
  unsigned encoding_ = 0;  // chunks held by encoders
  unsigned n_encoders_ = 0;
  bool closing_ = false;   // no more chunks will be queued
  bool stop_ = false;
  std::optional<Error> error_;

  // Writer thread side (read by the caller after the join).
  std::vector<uint64_t> sums_;
  std::atomic<uint64_t> stored_{0};
  // Bytes per second of the writer's own time in HDF5 (the page-cache copy): encoders compress
  // a chunk only if the sample saves more bytes per CPU-second than this (encode_chunk).
  std::atomic<double> writer_rate_{0};  // 0 until the first chunk is written
  uint64_t extent_ = 0;
  uint64_t raw_chunks_ = 0, packed_chunks_ = 0, shuffled_chunks_ = 0;
  bool tail_raw_ = false;
  int direct_fd_ = -1;  // HDF5's sec2 descriptor when raw chunks are written with O_DIRECT
  uint64_t direct_chunks_ = 0;
  uint64_t unflushed_ = 0;       // writer: direct bytes since the last fdatasync request
  bool flush_wanted_ = false;    // under mu_: the flusher should run fdatasync
  double t_flush_ = 0;           // flusher's time in fdatasync (read after the join)
  unsigned flushes_ = 0;
  std::thread flusher_;
  UniqueFd wb_fd_;
  uint64_t wb_from_ = 0, unsynced_ = 0;
  double t_write_ = 0, t_writeback_ = 0, t_writer_wait_ = 0, t_caller_wait_ = 0;

  std::thread writer_;
  std::vector<std::thread> encoders_;
};

}  // namespace ferry::image
