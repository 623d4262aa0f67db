// SPDX-License-Identifier: Apache-2.0
// ChunkWriter / ChunkReader: direct chunk I/O on a 1-D uint8 dataset with per-chunk XXH3-64.
// Algorithm (writer): copy appended spans into a one-chunk buffer; when it is full (or at
// finish, partially full) hash its logical bytes and zero the padding; if a worker of the pool
// is idle, hand the chunk to it (zstd or raw, chunk_codec.hpp), else write it raw right away.
// Chunks the workers finished are written by the writer's thread the next time it flushes
// (HDF5 calls stay on one thread), each at its own offset, so chunk order in the file does not
// matter. The extent is grown (never shrunk) to cover each chunk before it is written, so HDF5
// never rewrites a chunk behind our back. Every 64 MiB written, writeback of the file is
// started (sync_file_range), so the final fsync finds little left to do and the disk works
// while we read.
// Algorithm (reader): a read covering a whole chunk from its start reads it straight into the
// caller's buffer (H5Dread_chunk: one pread for a raw chunk), decodes it there if it is encoded
// and checks its XXH3; a partial read loads the chunk into a one-chunk cache first (one per
// thread, shared by all readers). So a caller
// reading chunk-aligned ranges (the restore's page filler) copies each byte once.
#include "chunk_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "ferry/common/hash.hpp"
#include "ferry/common/unique_fd.hpp"
#include "tables.hpp"

namespace ferry::image {

namespace {

// A chunk larger than this in a file is refused: it bounds the reader's buffers.
constexpr size_t kMaxChunkBytes = size_t{64} << 20;
constexpr size_t kMinChunkBytes = 4096;

constexpr uint64_t kWritebackBytes = uint64_t{64} << 20;

// Dataset creation properties of a chunk stream: chunked, the zstd filter in the pipeline
// (optional: a chunk may skip it, as raw chunks do).
h5::Id make_dcpl() {
  register_zstd_filter();
  h5::Id dcpl(H5Pcreate(H5P_DATASET_CREATE));
  hsize_t chunk[1] = {kChunkBytes};
  H5Pset_chunk(dcpl.get(), 1, chunk);
  const unsigned level = kZstdLevel;
  H5Pset_filter(dcpl.get(), kZstdFilter, H5Z_FLAG_OPTIONAL, 1, &level);
  H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
  H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_INCR);
  return dcpl;
}

// The one-chunk cache and the scratch for encoded chunks, shared by every ChunkReader of a
// thread: a restore reads image after image (a chain's bases in turn), so one hot buffer
// serves them all. One per reader cost a page fault per page of each buffer (and, on this VM,
// another on the first user read of each page the kernel filled): per perf a chain of 11
// images read and hashed every byte ~1.5x dearer than one image did.
struct ReadScratch {
  ChunkBuffer cache, stored;
  uint64_t owner = 0;  // ChunkReader::id_ whose chunk `cache` holds (0: none)
  uint64_t index = UINT64_MAX;
};

ReadScratch& scratch() {
  thread_local ReadScratch s;
  return s;
}

std::atomic<uint64_t> next_reader_id{1};

std::string chunk_label(const std::string& path, uint64_t index, size_t chunk, uint64_t size) {
  uint64_t begin = index * chunk;
  uint64_t end = std::min<uint64_t>(begin + chunk, size);
  return path + " chunk " + std::to_string(index) + " (bytes " + std::to_string(begin) + ".." +
         std::to_string(end) + ")";
}

}  // namespace

// ---- ChunkWriter ------------------------------------------------------------------------------

Result<std::unique_ptr<ChunkWriter>> ChunkWriter::create(hid_t file, std::string data_path,
                                                         std::string sums_path,
                                                         std::string fname) {
  auto w = std::unique_ptr<ChunkWriter>(new ChunkWriter());
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
  w->buf_.allocate(kChunkBytes);
  return w;
}

ChunkWriter::~ChunkWriter() { pool_.reset(); }  // joins the workers before the jobs go

Result<void> ChunkWriter::append(std::span<const std::byte> data) {
  while (!data.empty()) {
    size_t n = std::min(data.size(), buf_.size - fill_);
    std::memcpy(buf_.data.get() + fill_, data.data(), n);
    fill_ += n;
    total_ += n;
    data = data.subspan(n);
    if (fill_ == buf_.size) FERRY_TRY_VOID(flush_chunk());
  }
  return {};
}

ChunkBuffer ChunkWriter::take_buffer() {
  ChunkBuffer b;
  if (!spare_.empty()) {
    b = std::move(spare_.back());
    spare_.pop_back();
  } else {
    b.allocate(kChunkBytes);
  }
  return b;
}

Result<void> ChunkWriter::flush_chunk() {
  if (fill_ == 0) return {};
  const uint64_t index = next_index_++;
  const size_t used = fill_;
  fill_ = 0;
  sums_.push_back(hash::xxh3_64({buf_.data.get(), used}));
  if (used < buf_.size) std::memset(buf_.data.get() + used, 0, buf_.size - used);
  if (!pool_checked_) {
    pool_checked_ = true;
    workers_ = encoder_threads();
    if (workers_ > 0) pool_ = std::make_unique<WorkerPool>(workers_);
  }
  bool idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle = busy_ < workers_;
    if (idle) ++busy_;
  }
  if (!idle) {
    FERRY_TRY_VOID(write_chunk(index, used, buf_.data.get(), buf_.size, true));
  } else {
    auto job = std::make_shared<Job>();
    job->index = index;
    job->used = used;
    job->data = std::move(buf_);
    buf_ = take_buffer();
    pool_->submit([this, job] {
      job->packed_size = zstd_encode({job->data.data.get(), job->data.size}, job->packed);
      {
        std::lock_guard<std::mutex> lock(mu_);
        done_.push_back(job);
      }
      done_cv_.notify_all();
    });
  }
  return write_finished(false);
}

Result<void> ChunkWriter::write_finished(bool all) {
  for (;;) {
    std::vector<std::shared_ptr<Job>> ready;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (all) done_cv_.wait(lock, [&] { return !done_.empty() || busy_ == 0; });
      ready.swap(done_);
      busy_ -= static_cast<unsigned>(ready.size());
    }
    for (auto& j : ready) {
      bool raw = j->packed_size == 0;
      FERRY_TRY_VOID(write_chunk(j->index, j->used, raw ? j->data.data.get() : j->packed.data(),
                                 raw ? j->data.size : j->packed_size, raw));
      spare_.push_back(std::move(j->data));
    }
    if (!all) return {};
    std::lock_guard<std::mutex> lock(mu_);
    if (busy_ == 0 && done_.empty()) return {};
  }
}

Result<void> ChunkWriter::write_chunk(uint64_t index, size_t used, const std::byte* bytes,
                                      size_t size, bool raw) {
  hsize_t offset[1] = {index * kChunkBytes};
  if (offset[0] + used > extent_) {
    hsize_t extent[1] = {offset[0] + used};
    if (H5Dset_extent(dset_.get(), extent) < 0)
      return fail(h5::write_error(fname_, "extend dataset " + data_path_));
    extent_ = extent[0];
  }
  if (H5Dwrite_chunk(dset_.get(), H5P_DEFAULT, raw ? kRawChunkMask : 0, offset, size, bytes) < 0)
    return fail(h5::write_error(fname_, "write " + chunk_label(data_path_, index, kChunkBytes,
                                                               offset[0] + used)));
  stored_ += size;
  raw_chunks_ += raw;
  if (used < kChunkBytes) tail_raw_ = raw;
  unsynced_ += size;
  if (unsynced_ >= kWritebackBytes) {
    // Start writeback of what HDF5 wrote so far (best effort, never waits for the disk).
    UniqueFd fd(::open(fname_.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd) (void)::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
    unsynced_ = 0;
  }
  return {};
}

Result<void> ChunkWriter::finish() {
  size_t tail = fill_;
  FERRY_TRY_VOID(flush_chunk());
  FERRY_TRY_VOID(write_finished(true));
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
  FERRY_TRY_VOID(tables::write_array(file_, sums_path_, tables::Col::u64, sums_.data(), dims,
                                     fname_));
  if (!dset_.reset()) return fail(h5::write_error(fname_, "close dataset " + data_path_));
  pool_.reset();
  buf_ = ChunkBuffer();
  spare_.clear();
  return {};
}

// ---- ChunkReader ------------------------------------------------------------------------------

Result<std::unique_ptr<ChunkReader>> ChunkReader::open(hid_t file, std::string data_path,
                                                       std::string sums_path,
                                                       uint64_t expected_size,
                                                       std::string fname) {
  auto r = std::unique_ptr<ChunkReader>(new ChunkReader());
  r->id_ = next_reader_id.fetch_add(1);
  r->data_path_ = std::move(data_path);
  r->fname_ = std::move(fname);
  const std::string& f = r->fname_;
  const std::string& p = r->data_path_;
  if (!h5::link_exists(file, p))
    return fail(errc::image_corrupt, "image " + f + ": missing dataset " + p);
  r->dset_ = h5::Id(H5Dopen2(file, p.c_str(), H5P_DEFAULT));
  if (!r->dset_) return fail(h5::corrupt(f, "cannot open dataset " + p));

  h5::Id type(H5Dget_type(r->dset_.get()));
  h5::Id space(H5Dget_space(r->dset_.get()));
  h5::Id dcpl(H5Dget_create_plist(r->dset_.get()));
  hsize_t dims[1] = {0}, chunk[1] = {0};
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) != 1 ||
      H5Sget_simple_extent_ndims(space.get()) != 1 ||
      H5Sget_simple_extent_dims(space.get(), dims, nullptr) < 0 ||
      H5Pget_layout(dcpl.get()) != H5D_CHUNKED || H5Pget_chunk(dcpl.get(), 1, chunk) != 1)
    return fail(h5::corrupt(f, "dataset " + p + " is not a 1-D chunked uint8 dataset"));
  if (chunk[0] < kMinChunkBytes || chunk[0] > kMaxChunkBytes)
    return fail(errc::image_corrupt, "image " + f + ": dataset " + p + " has chunks of " +
                                         std::to_string(chunk[0]) + " bytes");
  // 1.0-1.2: no filter; 1.3: exactly the zstd filter. Anything else is not ours to decode.
  if (int nf = H5Pget_nfilters(dcpl.get()); nf != 0) {
    unsigned flags = 0, cd[4] = {0, 0, 0, 0};
    size_t ncd = 4;
    char name[64] = "";
    H5Z_filter_t id = nf == 1 ? H5Pget_filter2(dcpl.get(), 0, &flags, &ncd, cd, sizeof name, name,
                                               nullptr)
                              : H5Z_FILTER_ERROR;
    if (id != kZstdFilter)
      return fail(errc::image_version,
                  "image " + f + ": dataset " + p + " uses " + std::to_string(nf) +
                      " HDF5 filter(s) (first id " + std::to_string(id) +
                      "); this build reads raw and zstd (32015) chunks only");
    r->zstd_ = true;
  }
  r->chunk_ = chunk[0];
  r->size_ = dims[0];
  if (r->size_ != expected_size)
    return fail(errc::image_corrupt, "image " + f + ": dataset " + p + " holds " +
                                         std::to_string(r->size_) + " bytes but the tables need " +
                                         std::to_string(expected_size));

  FERRY_TRY(sums, tables::read_array(file, sums_path, tables::Col::u64, 1, f));
  uint64_t nchunks = (r->size_ + r->chunk_ - 1) / r->chunk_;
  if (sums.dims[0] != nchunks)
    return fail(errc::image_corrupt, "image " + f + ": " + sums_path + " has " +
                                         std::to_string(sums.dims[0]) + " checksums for " +
                                         std::to_string(nchunks) + " chunks of " + p);
  r->sums_.resize(nchunks);
  r->checked_.assign(nchunks, false);
  if (nchunks) std::memcpy(r->sums_.data(), sums.data.data(), nchunks * 8);

  hsize_t stored_chunks = 0;
  if (H5Dget_num_chunks(r->dset_.get(), space.get(), &stored_chunks) < 0)
    return fail(h5::corrupt(f, "cannot index the chunks of " + p));
  if (stored_chunks != nchunks)
    return fail(errc::image_corrupt, "image " + f + ": " + p + " stores " +
                                         std::to_string(stored_chunks) + " of its " +
                                         std::to_string(nchunks) + " chunks (truncated image?)");
  return r;
}

// Reads chunk `index` into dst (room for chunk_ bytes), decodes it and checks its checksum. A
// raw chunk (the usual case) is read straight into dst; an encoded one through the scratch.
Result<void> ChunkReader::fetch(uint64_t index, std::byte* dst) {
  std::string label = chunk_label(data_path_, index, chunk_, size_);
  hsize_t offset[1] = {index * chunk_};
  hsize_t stored_size = 0;
  if (H5Dget_chunk_storage_size(dset_.get(), offset, &stored_size) < 0 || stored_size == 0)
    return fail(h5::corrupt(fname_, "missing " + label));
  if (stored_size > kMaxChunkBytes)
    return fail(errc::image_corrupt, "image " + fname_ + ": oversized " + label);
  ChunkBuffer& stored = scratch().stored;
  const bool chunk_sized = stored_size == chunk_;
  if (!chunk_sized && stored.size < stored_size) stored.allocate(std::max<size_t>(chunk_, stored_size));
  std::byte* into = chunk_sized ? dst : stored.data.get();
  uint32_t mask = 0;
  if (H5Dread_chunk(dset_.get(), H5P_DEFAULT, offset, &mask, into) < 0)
    return fail(h5::corrupt(fname_, "cannot read " + label));
  // 1.0-1.2 datasets have no filter (mask 0 = raw); in 1.3 ones a raw chunk skipped the filter.
  const bool raw = zstd_ ? mask == kRawChunkMask : mask == 0;
  if (raw) {
    if (!chunk_sized) return fail(errc::image_corrupt, "image " + fname_ + ": undecodable " + label);
  } else {
    if (!zstd_ || mask != 0) return fail(errc::image_corrupt, "image " + fname_ + ": undecodable " + label);
    if (chunk_sized) {  // a frame exactly one chunk long: the writer stores such chunks raw
      if (stored.size < chunk_) stored.allocate(chunk_);
      std::memcpy(stored.data.get(), dst, chunk_);
    }
    if (!zstd_decode({stored.data.get(), static_cast<size_t>(stored_size)}, {dst, chunk_}))
      return fail(errc::image_corrupt, "image " + fname_ + ": undecodable " + label);
  }
  size_t used = static_cast<size_t>(std::min<uint64_t>(chunk_, size_ - index * chunk_));
  if (hash::xxh3_64({dst, used}) != sums_[index])
    return fail(errc::image_corrupt, "image " + fname_ + ": checksum mismatch in " + label);
  checked_[index] = true;
  return {};
}

ChunkReader::~ChunkReader() { forget(); }

bool ChunkReader::cached(uint64_t index) const {
  const ReadScratch& s = scratch();
  return s.owner == id_ && s.index == index;
}

void ChunkReader::forget() {
  ReadScratch& s = scratch();
  if (s.owner == id_) s.owner = 0;
}

Result<void> ChunkReader::load(uint64_t index) {
  if (cached(index)) return {};
  ReadScratch& s = scratch();
  s.owner = 0;
  if (s.cache.size < chunk_) s.cache.allocate(chunk_);
  FERRY_TRY_VOID(fetch(index, s.cache.data.get()));
  s.owner = id_;
  s.index = index;
  return {};
}

Result<void> ChunkReader::read(uint64_t offset, std::span<std::byte> out) {
  if (offset > size_ || out.size() > size_ - offset)
    return fail(errc::image_corrupt, "image " + fname_ + ": read of " +
                                         std::to_string(out.size()) + " bytes at " +
                                         std::to_string(offset) + " beyond " + data_path_);
  while (!out.empty()) {
    uint64_t index = offset / chunk_;
    size_t in = static_cast<size_t>(offset - index * chunk_);
    if (in == 0 && out.size() >= chunk_ && !cached(index)) {
      // A whole chunk: read, decode and check it in the caller's buffer (no copy via the cache).
      FERRY_TRY_VOID(fetch(index, out.data()));
      out = out.subspan(chunk_);
      offset += chunk_;
      continue;
    }
    FERRY_TRY_VOID(load(index));
    size_t n = std::min(out.size(), chunk_ - in);
    std::memcpy(out.data(), scratch().cache.data.get() + in, n);
    out = out.subspan(n);
    offset += n;
  }
  return {};
}

Result<void> ChunkReader::verify_unread() {
  for (uint64_t i = 0; i < sums_.size(); ++i) {
    if (checked_[i]) continue;
    forget();
    FERRY_TRY_VOID(load(i));
  }
  return {};
}

Result<void> ChunkReader::verify_all() {
  for (uint64_t i = 0; i < sums_.size(); ++i) {
    forget();  // force a fresh read and check
    FERRY_TRY_VOID(load(i));
  }
  return {};
}

}  // namespace ferry::image
