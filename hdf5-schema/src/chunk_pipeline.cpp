// SPDX-License-Identifier: Apache-2.0
// ChunkPipeline: caller fills chunks, an encoder pool hashes and compresses the newest queued
// ones, a writer thread writes the ready or oldest ones and starts their writeback (algorithm
// in chunk_pipeline.hpp).
#include "chunk_pipeline.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "ferry/common/hash.hpp"
#include "tables.hpp"

namespace ferry::image {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool trace_enabled() {
  const char* e = std::getenv("FERRY_WRITE_TRACE");
  return e && *e && std::strcmp(e, "0") != 0;
}

// Dataset creation properties of a chunk stream (SCHEMA.md): chunked, the pipeline [shuffle
// (element size 8), zstd], both optional (a chunk's filter mask says which it skipped).
h5::Id make_dcpl() {
  register_filters();
  h5::Id dcpl(H5Pcreate(H5P_DATASET_CREATE));
  hsize_t chunk[1] = {kChunkBytes};
  H5Pset_chunk(dcpl.get(), 1, chunk);
  const unsigned elem = kShuffleElementBytes, level = kZstdLevel;
  H5Pset_filter(dcpl.get(), kShuffleFilter, H5Z_FLAG_OPTIONAL, 1, &elem);
  H5Pset_filter(dcpl.get(), kZstdFilter, H5Z_FLAG_OPTIONAL, 1, &level);
  H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
  H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_INCR);
  return dcpl;
}

// HDF5's sec2 descriptor of `file` if raw chunks can be written to it with O_DIRECT (see
// chunk_pipeline.hpp): sec2 driver, allocations of a chunk aligned to 4 KiB, no metadata cache
// evictions (so no metadata write happens inside a chunk write), a file system that does direct
// I/O at 4 KiB alignment (statx DIOALIGN). -1 otherwise or with FERRY_WRITE_DIRECT=0.
int direct_io_fd(hid_t file) {
  if (const char* e = std::getenv("FERRY_WRITE_DIRECT"); e && std::strcmp(e, "0") == 0) return -1;
  constexpr uint32_t kAlign = 4096;
  h5::Id fapl(H5Fget_access_plist(file));
  if (!fapl || H5Pget_driver(fapl.get()) != H5FD_SEC2) return -1;
  hsize_t threshold = 0, alignment = 0;
  if (H5Pget_alignment(fapl.get(), &threshold, &alignment) < 0 || alignment == 0 ||
      alignment % kAlign != 0 || threshold > kChunkBytes)
    return -1;
  H5AC_cache_config_t mdc{};
  mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
  if (H5Pget_mdc_config(fapl.get(), &mdc) < 0 || mdc.evictions_enabled) return -1;
  void* handle = nullptr;
  if (H5Fget_vfd_handle(file, fapl.get(), &handle) < 0 || !handle) return -1;
  const int fd = *static_cast<int*>(handle);
  struct statx stx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) != 0 || !(stx.stx_mask & STATX_DIOALIGN) ||
      stx.stx_dio_offset_align == 0 || stx.stx_dio_offset_align > kAlign || stx.stx_dio_mem_align > kAlign)
    return -1;
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_DIRECT) != 0) return -1;
  (void)::fcntl(fd, F_SETFL, fl);
  return fd;
}

// Held around every chunk write of every stream: O_DIRECT is set on a file's descriptor only
// while one raw chunk is written, and no other stream's write may run meanwhile.
std::mutex& chunk_write_mutex() {
  static std::mutex m;
  return m;
}

std::string chunk_label(const std::string& path, uint64_t index, uint64_t end) {
  return path + " chunk " + std::to_string(index) + " (bytes " + std::to_string(index * kChunkBytes) +
         ".." + std::to_string(end) + ")";
}

}  // namespace

Result<std::unique_ptr<ChunkPipeline>> ChunkPipeline::create(hid_t file, std::string data_path,
                                                             std::string sums_path,
                                                             std::string fname) {
  auto w = std::unique_ptr<ChunkPipeline>(new ChunkPipeline());
  w->file_ = file;
  w->data_path_ = std::move(data_path);
  w->sums_path_ = std::move(sums_path);
  w->fname_ = std::move(fname);
  hsize_t dims[1] = {0}, maxdims[1] = {H5S_UNLIMITED};
  h5::Id space(H5Screate_simple(1, dims, maxdims));
  h5::Id dcpl = make_dcpl();
  w->dset_ = h5::Id(H5Dcreate2(file, w->data_path_.c_str(), H5T_STD_U8LE, space.get(),
                               H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
  if (!w->dset_) return fail(h5::write_error(w->fname_, "create dataset " + w->data_path_));
  w->direct_fd_ = direct_io_fd(file);
  h5::take_error();
  return w;
}

ChunkPipeline::~ChunkPipeline() { stop_threads(); }

void ChunkPipeline::stop_threads() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (flusher_.joinable()) flusher_.join();
  for (auto& t : encoders_)
    if (t.joinable()) t.join();
  encoders_.clear();
}

uint64_t ChunkPipeline::stored_bytes() const noexcept { return stored_; }

void ChunkPipeline::start_threads() {
  started_ = true;
  n_encoders_ = encoder_threads();
  writer_ = std::thread([this] { writer_loop(); });
  for (unsigned i = 0; i < n_encoders_; ++i) encoders_.emplace_back([this] { encoder_loop(); });
}

Result<void> ChunkPipeline::ensure_current() {
  if (current_) return {};
  // A spare buffer, a new one while fewer than kMaxBuffers exist, else wait for one.
  auto t0 = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return error_ || !spare_.empty() || buffers_ < kMaxBuffers; });
  if (error_) return fail(*error_);
  if (!spare_.empty()) {
    current_ = std::move(spare_.back());
    spare_.pop_back();
  } else {
    ++buffers_;
    lock.unlock();
    auto c = take_pooled();
    if (!c) {
      c = std::make_unique<Chunk>();
      c->data = HugeBuffer(kChunkBytes);
      if (c->data.empty()) return fail_errno("image " + fname_ + ": chunk buffer", ENOMEM);
    }
    current_ = std::move(c);
  }
  t_caller_wait_ += since(t0);
  current_->used = 0;
  return {};
}

Result<void> ChunkPipeline::append(std::span<const std::byte> data) {
  while (!data.empty()) {
    FERRY_TRY_VOID(ensure_current());
    Chunk& c = *current_;
    size_t n = std::min(data.size(), kChunkBytes - c.used);
    std::memcpy(c.data.data() + c.used, data.data(), n);
    c.used += n;
    total_ += n;
    data = data.subspan(n);
    if (c.used == kChunkBytes) FERRY_TRY_VOID(queue_current());
  }
  return {};
}

Result<std::span<std::byte>> ChunkPipeline::fill_buffer(size_t max) {
  FERRY_TRY_VOID(ensure_current());
  Chunk& c = *current_;
  return std::span<std::byte>(c.data.data() + c.used, std::min(max, kChunkBytes - c.used));
}

Result<void> ChunkPipeline::commit(size_t n) {
  if (n == 0) return {};
  if (!current_ || n > kChunkBytes - current_->used)
    return fail(errc::protocol, "image " + fname_ + ": commit of " + std::to_string(n) +
                                    " bytes beyond the chunk buffer handed out");
  current_->used += n;
  total_ += n;
  if (current_->used == kChunkBytes) FERRY_TRY_VOID(queue_current());
  return {};
}

Result<void> ChunkPipeline::queue_current() {
  if (!current_ || current_->used == 0) return {};
  if (!started_) start_threads();
  Chunk& c = *current_;
  if (c.used < kChunkBytes) std::memset(c.data.data() + c.used, 0, kChunkBytes - c.used);
  c.index = next_index_++;
  c.hashed = false;
  c.packed_size = 0;
  c.coding = ChunkCoding::raw;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_) return fail(*error_);
    filled_.push_back(std::move(current_));
  }
  cv_.notify_all();
  return {};
}

void ChunkPipeline::encoder_loop() {
  for (;;) {
    std::unique_ptr<Chunk> c;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !filled_.empty(); });
      if (filled_.empty()) return;  // stopping, nothing queued
      c = std::move(filled_.back());
      filled_.pop_back();
      ++encoding_;
    }
    c->sum = hash::xxh3_64({c->data.data(), c->used});
    c->hashed = true;
    Encoded e = encode_chunk({c->data.data(), kChunkBytes}, c->packed, writer_rate_.load());
    c->coding = e.coding;
    c->packed_size = e.size;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --encoding_;
      encoded_.push_back(std::move(c));
    }
    cv_.notify_all();
  }
}

void ChunkPipeline::writer_loop() {
  h5::silence_errors();
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // per thread in a thread-safe HDF5
  for (;;) {
    std::unique_ptr<Chunk> c;
    {
      auto t0 = Clock::now();
      std::unique_lock<std::mutex> lock(mu_);
      // A queued chunk is left to an idle encoder (which takes it at once); the writer takes
      // it raw only while every encoder is busy.
      cv_.wait(lock, [&] {
        return !encoded_.empty() || (!filled_.empty() && encoding_ >= n_encoders_) ||
               (closing_ && filled_.empty() && encoding_ == 0) || stop_;
      });
      t_writer_wait_ += since(t0);
      if (!encoded_.empty()) {
        c = std::move(encoded_.back());
        encoded_.pop_back();
      } else if (!filled_.empty() && (encoding_ >= n_encoders_ || stop_)) {
        c = std::move(filled_.front());
        filled_.erase(filled_.begin());
      } else if (stop_ || (closing_ && filled_.empty() && encoding_ == 0)) {
        return;  // closing and nothing left (or stopped)
      } else {
        continue;
      }
    }
    if (!c->hashed) {
      c->sum = hash::xxh3_64({c->data.data(), c->used});
      c->hashed = true;
    }
    bool failed;  // an earlier write failed, or the stream is abandoned: drop the chunk
    {
      std::lock_guard<std::mutex> lock(mu_);
      failed = error_.has_value() || stop_;
    }
    if (!failed) {
      if (auto r = write_chunk(*c); !r) {
        std::lock_guard<std::mutex> lock(mu_);
        error_ = r.error();
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      spare_.push_back(std::move(c));
    }
    cv_.notify_all();
  }
}

Result<void> ChunkPipeline::write_chunk(Chunk& c) {
  auto t0 = Clock::now();
  const bool raw = c.packed_size == 0;
  hsize_t offset[1] = {c.index * kChunkBytes};
  if (offset[0] + c.used > extent_) {
    hsize_t extent[1] = {offset[0] + c.used};
    if (H5Dset_extent(dset_.get(), extent) < 0)
      return fail(h5::write_error(fname_, "extend dataset " + data_path_));
    extent_ = extent[0];
  }
  const size_t size = raw ? kChunkBytes : c.packed_size;
  const std::byte* bytes = raw ? c.data.data() : c.packed.data();
  const bool direct = raw && direct_fd_ >= 0;
  bool ok = h5_write(c, offset[0], size, bytes, direct);
  if (!ok && direct) {
    // Buffered once more (same chunk, same place), and no direct I/O from now on.
    h5::take_error();
    direct_fd_ = -1;
    ok = h5_write(c, offset[0], size, bytes, false);
  } else if (ok && direct) {
    ++direct_chunks_;
    unflushed_ += size;
    if (unflushed_ >= kSyncBytes) {
      unflushed_ = 0;
      if (!wb_fd_) wb_fd_ = UniqueFd(::open(fname_.c_str(), O_RDONLY | O_CLOEXEC));
      if (wb_fd_) {
        if (!flusher_.joinable()) flusher_ = std::thread([this] { flusher_loop(); });
        {
          std::lock_guard<std::mutex> lock(mu_);
          flush_wanted_ = true;
        }
        cv_.notify_all();
      }
    }
  }
  if (!ok) return fail(h5::write_error(fname_, "write " + chunk_label(data_path_, c.index, offset[0] + c.used)));
  if (sums_.size() <= c.index) sums_.resize(c.index + 1);
  sums_[c.index] = c.sum;
  stored_ += size;
  raw_chunks_ += raw;
  packed_chunks_ += !raw;
  shuffled_chunks_ += !raw && c.coding == ChunkCoding::shuffle_zstd;
  if (c.used < kChunkBytes) tail_raw_ = raw;
  unsynced_ += size;
  t_write_ += since(t0);
  if (t_write_ > 0) writer_rate_.store(static_cast<double>(stored_.load()) / t_write_);
  if (unsynced_ >= kWritebackBytes) start_writeback();
  return {};
}

bool ChunkPipeline::h5_write(const Chunk& c, hsize_t offset, size_t size, const std::byte* bytes, bool direct) {
  std::lock_guard<std::mutex> lock(chunk_write_mutex());
  int flags = -1;
  if (direct) {
    flags = ::fcntl(direct_fd_, F_GETFL);
    if (flags < 0 || ::fcntl(direct_fd_, F_SETFL, flags | O_DIRECT) != 0) direct = false;
  }
  hsize_t off[1] = {offset};
  const bool ok = H5Dwrite_chunk(dset_.get(), H5P_DEFAULT, filter_mask(c.packed_size == 0 ? ChunkCoding::raw : c.coding),
                                 off, size, bytes) >= 0;
  if (direct) (void)::fcntl(direct_fd_, F_SETFL, flags);
  return ok;
}

void ChunkPipeline::flusher_loop() {
  // Runs fdatasync whenever the writer asks (a request arriving during one is served by the
  // next); ends when the stream closes. A failure here is not the image's: the final fsync
  // in ImageWriter::finish reports it.
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return flush_wanted_ || closing_ || stop_; });
      if (!flush_wanted_) return;
      flush_wanted_ = false;
    }
    auto t0 = Clock::now();
    (void)::fdatasync(wb_fd_.get());
    t_flush_ += since(t0);
    ++flushes_;
  }
}

void ChunkPipeline::start_writeback() {
  // Best effort: hand what HDF5 wrote since the last call to the disk, without waiting for it
  // (it may still wait for room in the device queue: then the disk is the bottleneck and the
  // queued chunks are compressed meanwhile).
  auto t0 = Clock::now();
  unsynced_ = 0;
  if (!wb_fd_) wb_fd_ = UniqueFd(::open(fname_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!wb_fd_) return;
  struct stat st {};
  if (::fstat(wb_fd_.get(), &st) != 0) return;
  const auto end = static_cast<uint64_t>(st.st_size);
  if (end > wb_from_) {
    (void)::sync_file_range(wb_fd_.get(), static_cast<off_t>(wb_from_),
                            static_cast<off_t>(end - wb_from_), SYNC_FILE_RANGE_WRITE);
    wb_from_ = end;
  }
  t_writeback_ += since(t0);
}

Result<void> ChunkPipeline::finish() {
  auto t0 = Clock::now();
  const size_t tail = current_ ? current_->used : 0;
  FERRY_TRY_VOID(queue_current());
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  stop_threads();
  double drain = since(t0);
  if (error_) return fail(*error_);
  if (tail > 0 && tail_raw_) {
    hsize_t coord[1] = {(sums_.size() - 1) * kChunkBytes};
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    if (H5Dget_chunk_info_by_coord(dset_.get(), coord, &mask, &addr, &size) >= 0 &&
        addr != HADDR_UNDEF && size == kChunkBytes) {
      constexpr uint64_t kBlock = 4096;
      uint64_t begin = (addr + tail + kBlock - 1) / kBlock * kBlock;
      uint64_t end = (addr + size) / kBlock * kBlock;
      if (end > begin) padding_ = {begin, end - begin};
    }
    h5::take_error();
  }
  hsize_t dims[1] = {sums_.size()};
  FERRY_TRY_VOID(tables::write_array(file_, sums_path_, tables::Col::u64, sums_.data(), dims, fname_));
  if (!dset_.reset()) return fail(h5::write_error(fname_, "close dataset " + data_path_));
  if (trace_enabled())
    std::fprintf(stderr,
                 "ferry write %s:%s: %llu chunks (%llu zstd, %llu of them shuffled, %llu raw with O_DIRECT), %llu -> %llu bytes; writer: write %.3f s, "
                 "writeback %.3f s, idle %.3f s; %u fdatasync %.3f s; caller waited %.3f s for buffers; drain at finish %.3f s\n",
                 fname_.c_str(), data_path_.c_str(), static_cast<unsigned long long>(sums_.size()),
                 static_cast<unsigned long long>(packed_chunks_), static_cast<unsigned long long>(shuffled_chunks_),
                 static_cast<unsigned long long>(direct_chunks_),
                 static_cast<unsigned long long>(total_),
                 static_cast<unsigned long long>(stored_), t_write_, t_writeback_, t_writer_wait_, flushes_, t_flush_,
                 t_caller_wait_, drain);
  return_pooled(spare_);
  filled_.clear();
  encoded_.clear();
  return {};
}

namespace {
std::mutex pool_mu;  // guards ChunkPipeline::pool()
bool keep_buffers() {
  const char* e = std::getenv("FERRY_WRITE_KEEP_BUFFERS");
  return !(e && std::strcmp(e, "0") == 0);
}
}  // namespace

// Chunk objects, so their compression buffers (`packed`) are reused too; destroyed at exit,
// after every stream.
std::vector<std::unique_ptr<ChunkPipeline::Chunk>>& ChunkPipeline::pool() {
  static std::vector<std::unique_ptr<Chunk>> chunks;
  return chunks;
}

std::unique_ptr<ChunkPipeline::Chunk> ChunkPipeline::take_pooled() {
  std::lock_guard<std::mutex> lock(pool_mu);
  auto& chunks = pool();
  if (chunks.empty()) return nullptr;
  auto c = std::move(chunks.back());
  chunks.pop_back();
  c->index = 0;
  c->used = 0;
  c->sum = 0;
  c->hashed = false;
  c->packed_size = 0;
  c->coding = ChunkCoding::raw;
  return c;
}

void ChunkPipeline::return_pooled(std::vector<std::unique_ptr<Chunk>>& chunks) {
  if (keep_buffers()) {
    std::lock_guard<std::mutex> lock(pool_mu);
    auto& kept = pool();
    for (auto& c : chunks)
      if (c && !c->data.empty() && kept.size() < kMaxBuffers) kept.push_back(std::move(c));
  }
  chunks.clear();
}

}  // namespace ferry::image
