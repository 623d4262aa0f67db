// SPDX-License-Identifier: Apache-2.0
// ChunkReader: direct chunk reads of a 1-D uint8 dataset with per-chunk XXH3-64 (the writer is
// chunk_pipeline.cpp).
// Algorithm: a read covering a whole chunk from its start reads it straight into the
// caller's buffer (H5Dread_chunk: one pread for a raw chunk), decodes it there if it is encoded
// and checks its XXH3; a partial read loads the chunk into a one-chunk cache first (one per
// thread, shared by all readers). So a caller
// reading chunk-aligned ranges (the restore's page filler) copies each byte once. A read of
// several whole chunks decodes them in parallel (fetch_many): the calling thread reads each
// chunk as stored (all HDF5 calls stay on it) while decode workers (one per CPU but one)
// decompress, unshuffle and hash the ones already read; then it joins them on the rest.
#include "chunk_store.hpp"

#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "ferry/common/hash.hpp"
#include "tables.hpp"

namespace ferry::image {

namespace {

// A chunk larger than this in a file is refused: it bounds the reader's buffers.
constexpr size_t kMaxChunkBytes = size_t{64} << 20;
constexpr size_t kMinChunkBytes = 4096;

// The one-chunk cache and the scratch for encoded chunks, shared by every ChunkReader of a
// thread: a restore reads image after image (a chain's bases in turn), so one hot buffer
// serves them all. One per reader cost a page fault per page of each buffer (and, on this VM,
// another on the first user read of each page the kernel filled): per perf a chain of 11
// images read and hashed every byte ~1.5x dearer than one image did.
struct ThreadReadBuffers {
  ChunkBuffer cache, stored;
  ChunkBuffer sink;   // bytes of a streamed raw chunk no piece asks for: read, hashed, dropped
  HugeBuffer planes;  // a shuffled chunk between zstd and unshuffle
  uint64_t owner = 0;  // ChunkReader::id_ whose chunk `cache` holds (0: none)
  uint64_t index = UINT64_MAX;
};

std::unique_ptr<ThreadReadBuffers>& thread_buffers() {
  thread_local std::unique_ptr<ThreadReadBuffers> b;
  return b;
}

ThreadReadBuffers& scratch() {
  auto& b = thread_buffers();
  if (!b) b = std::make_unique<ThreadReadBuffers>();
  return *b;
}

// The thread's sink for bytes of a streamed chunk no piece asks for, at least `chunk` bytes.
std::byte* sink(size_t chunk) {
  ChunkBuffer& s = scratch().sink;
  if (s.size < chunk) s.allocate(chunk);
  return s.data.data();
}

std::atomic<uint64_t> next_reader_id{1};

std::string chunk_label(const std::string& path, uint64_t index, size_t chunk, uint64_t size) {
  uint64_t begin = index * chunk;
  uint64_t end = std::min<uint64_t>(begin + chunk, size);
  return path + " chunk " + std::to_string(index) + " (bytes " + std::to_string(begin) + ".." +
         std::to_string(end) + ")";
}

}  // namespace

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
  if (h5::Id fapl(H5Fget_access_plist(file)); fapl && H5Pget_driver(fapl.get()) == H5FD_SEC2) {
    void* handle = nullptr;
    if (H5Fget_vfd_handle(file, fapl.get(), &handle) >= 0 && handle) r->fd_ = *static_cast<int*>(handle);
  }

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
  // 1.0-1.2: no filter; 1.3-1.4: exactly [zstd]; 1.5: exactly [shuffle (element size 8),
  // zstd]. Anything else is not ours to decode.
  if (int nf = H5Pget_nfilters(dcpl.get()); nf != 0) {
    H5Z_filter_t ids[2] = {H5Z_FILTER_ERROR, H5Z_FILTER_ERROR};
    unsigned first_cd = 0;
    for (int i = 0; i < std::min(nf, 2); ++i) {
      unsigned flags = 0, cd[4] = {0, 0, 0, 0};
      size_t ncd = 4;
      char name[64] = "";
      ids[i] = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &ncd, cd, sizeof name, name, nullptr);
      if (i == 0) first_cd = ncd >= 1 ? cd[0] : 0;
    }
    if (nf == 1 && ids[0] == kZstdFilter)
      r->pipeline_ = Pipeline::zstd;
    else if (nf == 2 && ids[0] == kShuffleFilter && first_cd == kShuffleElementBytes && ids[1] == kZstdFilter)
      r->pipeline_ = Pipeline::shuffle_zstd;
    else
      return fail(errc::image_version,
                  "image " + f + ": dataset " + p + " uses " + std::to_string(nf) +
                      " HDF5 filter(s) (first id " + std::to_string(ids[0]) +
                      "); this build reads raw, zstd (32015) and shuffle (2, element size 8) + zstd chunks only");
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

// Reads chunk `index` as stored: a raw chunk straight into dst (room for chunk_ bytes), an
// encoded one into `stored`. HDF5 calls: the calling thread only.
Result<ChunkReader::Stored> ChunkReader::read_stored(uint64_t index, std::byte* dst, ChunkBuffer& stored) {
  hsize_t offset[1] = {index * chunk_};
  hsize_t stored_size = 0;
  if (H5Dget_chunk_storage_size(dset_.get(), offset, &stored_size) < 0 || stored_size == 0)
    return fail(h5::corrupt(fname_, "missing " + chunk_label(data_path_, index, chunk_, size_)));
  if (stored_size > kMaxChunkBytes)
    return fail(errc::image_corrupt, "image " + fname_ + ": oversized " + chunk_label(data_path_, index, chunk_, size_));
  const bool chunk_sized = stored_size == chunk_;
  if (!chunk_sized && stored.size < stored_size) stored.allocate(std::max<size_t>(chunk_, stored_size));
  std::byte* into = chunk_sized ? dst : stored.data.data();
  uint32_t mask = 0;
  if (H5Dread_chunk(dset_.get(), H5P_DEFAULT, offset, &mask, into) < 0)
    return fail(h5::corrupt(fname_, "cannot read " + chunk_label(data_path_, index, chunk_, size_)));
  auto coding = coding_of(mask);
  if (!coding)
    return fail(errc::image_corrupt, "image " + fname_ + ": undecodable " + chunk_label(data_path_, index, chunk_, size_) +
                                         " (filter mask " + std::to_string(mask) + ")");
  if (*coding == ChunkCoding::raw) {
    if (!chunk_sized)
      return fail(errc::image_corrupt, "image " + fname_ + ": undecodable " + chunk_label(data_path_, index, chunk_, size_));
  } else if (chunk_sized) {  // a frame exactly one chunk long: the writer stores such chunks raw
    if (stored.size < chunk_) stored.allocate(chunk_);
    std::memcpy(stored.data.data(), dst, chunk_);
  }
  return Stored{*coding, static_cast<size_t>(stored_size)};
}

// Decodes a chunk read by read_stored into dst and checks its checksum. No HDF5 call: any
// thread (the reader's decode workers run it).
Result<void> ChunkReader::finish_chunk(uint64_t index, const Stored& st, const ChunkBuffer& stored, std::byte* dst,
                                       HugeBuffer& planes) const {
  if (st.coding != ChunkCoding::raw &&
      !decode_chunk(st.coding, {stored.data.data(), st.size}, {dst, chunk_}, planes))
    return fail(errc::image_corrupt, "image " + fname_ + ": undecodable " + chunk_label(data_path_, index, chunk_, size_));
  size_t used = static_cast<size_t>(std::min<uint64_t>(chunk_, size_ - index * chunk_));
  if (hash::xxh3_64({dst, used}) != sums_[index])
    return fail(errc::image_corrupt,
                "image " + fname_ + ": checksum mismatch in " + chunk_label(data_path_, index, chunk_, size_));
  return {};
}

// Reads chunk `index` into dst (room for chunk_ bytes), decodes it and checks its checksum. A
// raw chunk (the usual case) is read straight into dst; an encoded one through the scratch.
Result<void> ChunkReader::fetch(uint64_t index, std::byte* dst) {
  ThreadReadBuffers& s = scratch();
  FERRY_TRY(st, read_stored(index, dst, s.stored));
  FERRY_TRY_VOID(finish_chunk(index, st, s.stored, dst, s.planes));
  checked_[index] = true;
  return {};
}

namespace {

// Decode workers of the reader: with 4 or more CPUs, one per CPU but two (the restore's
// reading thread and its page-placing thread keep theirs), at most 4; none below 4 CPUs: on the
// 2-CPU project VM one worker made a 64 MiB read of shuffled chunks slower, not faster (2.0 vs
// 2.15 GB/s, 4 alternating pairs at load 4: there is no idle CPU to give it).
// FERRY_DECODERS=N overrides it (0: decode on the reading thread only).
WorkerPool* decode_pool() {
  static const unsigned n = [] {
    if (const char* e = std::getenv("FERRY_DECODERS"); e && *e) return static_cast<unsigned>(std::clamp(std::atoi(e), 0, 8));
    unsigned c = std::thread::hardware_concurrency();
    return c >= 4 ? std::min(c - 2, 4u) : 0u;
  }();
  if (n == 0) return nullptr;
  static WorkerPool* pool = new WorkerPool(n);  // never destroyed: workers may outlive statics
  return pool;
}

}  // namespace

// `n` whole chunks from `first` into dst: this thread reads each as stored (HDF5) and, from
// the first encoded one on, the decode workers decode and check the ones already read while it
// reads the next; when all are read this thread finishes the rest with them (all of them when
// every chunk is raw: hashing needs no help). Errors are reported in chunk order.
Result<void> ChunkReader::fetch_many(uint64_t first, size_t n, std::byte* dst) {
  struct Piece {
    Stored st;
    Result<void> result;
  };
  struct Batch {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Piece> pieces;
    size_t readable = 0, limit = 0, next = 0, done = 0;
  };
  auto b = std::make_shared<Batch>();
  b->pieces.resize(n);
  b->limit = n;
  thread_local std::vector<ChunkBuffer> stored;
  if (stored.size() < n) stored.resize(n);
  ChunkBuffer* bufs = stored.data();
  const size_t chunk = chunk_;
  // Takes the next readable chunk and finishes it, until none is left to take.
  auto work = [this, b, first, dst, bufs, chunk] {
    thread_local HugeBuffer planes;
    for (;;) {
      std::unique_lock<std::mutex> lock(b->mu);
      b->cv.wait(lock, [&] { return b->next >= b->limit || b->next < b->readable; });
      if (b->next >= b->limit) return;
      size_t j = b->next++;
      lock.unlock();
      Result<void> r = finish_chunk(first + j, b->pieces[j].st, bufs[j], dst + j * chunk, planes);
      lock.lock();
      b->pieces[j].result = std::move(r);
      ++b->done;
      b->cv.notify_all();
    }
  };
  WorkerPool* pool = decode_pool();
  bool helped = false;  // workers are asked only once an encoded chunk shows up (raw: hash only)
  std::optional<Error> read_error;
  for (size_t j = 0; j < n; ++j) {
    auto st = read_stored(first + j, dst + j * chunk, bufs[j]);
    if (st && st->coding != ChunkCoding::raw && !helped) {
      helped = true;
      for (unsigned w = 0; w < std::min<size_t>(pool->size(), n - 1); ++w) pool->submit(work);
    }
    std::lock_guard<std::mutex> lock(b->mu);
    if (!st) {
      read_error = st.error();
      b->limit = j;
    } else {
      b->pieces[j].st = *st;
      b->readable = j + 1;
    }
    b->cv.notify_all();
    if (read_error) break;
  }
  work();
  {
    std::unique_lock<std::mutex> lock(b->mu);
    b->cv.wait(lock, [&] { return b->done == b->limit; });
  }
  for (size_t j = 0; j < b->limit; ++j) {
    if (!b->pieces[j].result) return fail(b->pieces[j].result.error());
    checked_[first + j] = true;
  }
  if (read_error) return fail(*read_error);
  return {};
}

// The coding of a chunk stored with filter mask `mask` in this dataset's pipeline; none if the
// mask names no coding the writer produces.
std::optional<ChunkCoding> ChunkReader::coding_of(uint32_t mask) const {
  switch (pipeline_) {
    case Pipeline::none:  // 1.0-1.2
      if (mask == 0) return ChunkCoding::raw;
      break;
    case Pipeline::zstd:  // 1.3-1.4
      if (mask == kMaskRawZstdOnlyPipeline) return ChunkCoding::raw;
      if (mask == kMaskZstdOnlyPipeline) return ChunkCoding::zstd;
      break;
    case Pipeline::shuffle_zstd:  // 1.5
      if (mask == kMaskRaw) return ChunkCoding::raw;
      if (mask == kMaskZstd) return ChunkCoding::zstd;
      if (mask == kMaskShuffleZstd) return ChunkCoding::shuffle_zstd;
      break;
  }
  return std::nullopt;
}

ChunkReader::~ChunkReader() { forget(); }

bool ChunkReader::cached(uint64_t index) const {
  const ThreadReadBuffers& s = scratch();
  return s.owner == id_ && s.index == index;
}

void ChunkReader::forget() {
  ThreadReadBuffers& s = scratch();
  if (s.owner == id_) s.owner = 0;
}

Result<void> ChunkReader::load(uint64_t index) {
  if (cached(index)) return {};
  ThreadReadBuffers& s = scratch();
  s.owner = 0;
  if (s.cache.size < chunk_) s.cache.allocate(chunk_);
  FERRY_TRY_VOID(fetch(index, s.cache.data.data()));
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
      // Whole chunks: read, decode and check them in the caller's buffer (no copy via the
      // cache); several at once on the decode workers.
      // At most kParallelChunks at once: each encoded one needs a stored-bytes buffer.
      constexpr size_t kParallelChunks = 8;
      size_t whole = std::min(out.size() / chunk_, kParallelChunks);
      if (whole >= 2 && decode_pool()) {
        FERRY_TRY_VOID(fetch_many(index, whole, out.data()));
      } else {
        whole = 1;
        FERRY_TRY_VOID(fetch(index, out.data()));
      }
      out = out.subspan(whole * chunk_);
      offset += whole * chunk_;
      continue;
    }
    FERRY_TRY_VOID(load(index));
    size_t n = std::min(out.size(), chunk_ - in);
    std::memcpy(out.data(), scratch().cache.data.data() + in, n);
    out = out.subspan(n);
    offset += n;
  }
  return {};
}

namespace {

// preadv of all of `iov` from `off`, across short reads and IOV_MAX (iov is consumed).
Result<void> preadv_all(int fd, std::vector<iovec>& iov, off_t off, const std::string& what) {
  size_t k = 0;
  while (k < iov.size()) {
    const int cnt = static_cast<int>(std::min<size_t>(iov.size() - k, IOV_MAX));
    ssize_t n = ::preadv(fd, iov.data() + k, cnt, off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read " + what);
    if (n == 0) return fail(errc::image_corrupt, "the file ends inside " + what + " (truncated image?)");
    off += n;
    for (size_t left = static_cast<size_t>(n); left > 0;) {
      if (left >= iov[k].iov_len) {
        left -= iov[k].iov_len;
        ++k;
      } else {
        iov[k].iov_base = static_cast<std::byte*>(iov[k].iov_base) + left;
        iov[k].iov_len -= left;
        left = 0;
      }
    }
  }
  return {};
}

}  // namespace

// Opens chunk `index` for streaming: a raw chunk is read piece by piece from the file, its
// checksum taken as it goes; any other is loaded whole into the reader's own buffer (checked
// now) and copied from there.
Result<void> ChunkReader::open_stream(uint64_t index) {
  Stream& st = stream_;
  st.index = index;
  st.pos = index * chunk_;
  hsize_t coord[1] = {index * chunk_};
  unsigned mask = 0;
  haddr_t addr = HADDR_UNDEF;
  hsize_t stored = 0;
  st.direct = fd_ >= 0 && H5Dget_chunk_info_by_coord(dset_.get(), coord, &mask, &addr, &stored) >= 0 &&
              addr != HADDR_UNDEF && stored == chunk_ && coding_of(mask) == ChunkCoding::raw;
  if (st.direct) {
    st.addr = addr;
    st.hash = std::make_unique<hash::Xxh3Stream>();
    return {};
  }
  if (st.copy.size < chunk_) st.copy.allocate(chunk_);
  ThreadReadBuffers& s = scratch();
  FERRY_TRY(stored_as, read_stored(index, st.copy.data.data(), s.stored));
  FERRY_TRY_VOID(finish_chunk(index, stored_as, s.stored, st.copy.data.data(), s.planes));
  checked_[index] = true;
  return {};
}

// Reads [st.pos, end) of the open raw chunk: into `iov` as given (pieces and gaps, in order,
// covering exactly that range), hashing it.
Result<void> ChunkReader::stream_read(std::vector<iovec>& iov, uint64_t end) {
  Stream& st = stream_;
  thread_local std::vector<iovec> hashed;
  hashed = iov;  // preadv_all consumes iov
  const std::string what = "image " + fname_ + " " + chunk_label(data_path_, st.index, chunk_, size_);
  FERRY_TRY_VOID(preadv_all(fd_, iov, static_cast<off_t>(st.addr + (st.pos - st.index * chunk_)), what));
  for (const iovec& v : hashed) st.hash->update({static_cast<const std::byte*>(v.iov_base), v.iov_len});
  st.pos = end;
  iov.clear();
  return {};
}

// Reads what is left of the open chunk (a raw one: hashed, then its checksum compared).
Result<void> ChunkReader::close_stream() {
  Stream& st = stream_;
  if (st.index == UINT64_MAX) return {};
  const uint64_t index = st.index;
  st.index = UINT64_MAX;
  if (!st.direct) return {};
  const uint64_t end = std::min<uint64_t>((index + 1) * chunk_, size_);
  if (st.pos < end) {
    std::vector<iovec> iov{{sink(chunk_), static_cast<size_t>(end - st.pos)}};
    st.index = index;
    auto r = stream_read(iov, end);
    st.index = UINT64_MAX;
    FERRY_TRY_VOID(r);
  }
  if (st.hash->digest() != sums_[index])
    return fail(errc::image_corrupt,
                "image " + fname_ + ": checksum mismatch in " + chunk_label(data_path_, index, chunk_, size_));
  checked_[index] = true;
  return {};
}

Result<void> ChunkReader::read_scattered(std::span<const Piece> pieces) {
  Stream& st = stream_;
  thread_local std::vector<iovec> iov;
  iov.clear();
  uint64_t run_end = 0;  // the end of the stretch `iov` covers, from st.pos
  for (const Piece& whole : pieces) {
    if (whole.offset > size_ || whole.len > size_ - whole.offset)
      return fail(errc::image_corrupt, "image " + fname_ + ": read of " + std::to_string(whole.len) + " bytes at " +
                                           std::to_string(whole.offset) + " beyond " + data_path_);
    uint64_t offset = whole.offset, len = whole.len;
    std::byte* out = whole.out;
    while (len > 0) {
      const uint64_t index = offset / chunk_;
      const uint64_t c_end = std::min<uint64_t>((index + 1) * chunk_, size_);
      const uint64_t n = std::min(len, c_end - offset);
      if (index != st.index) {
        if (!iov.empty()) FERRY_TRY_VOID(stream_read(iov, run_end));
        FERRY_TRY_VOID(close_stream());
        FERRY_TRY_VOID(open_stream(index));
      }
      if (!st.direct) {
        std::memcpy(out, st.copy.data.data() + (offset - index * chunk_), n);
      } else {
        const uint64_t at = iov.empty() ? st.pos : run_end;
        if (offset < at)
          return fail_errno("scattered read of " + data_path_ + ": pieces overlap or go backwards", EINVAL);
        if (offset > at) {  // bytes no piece asks for: read (and hashed) into the sink
          iov.push_back({sink(chunk_) + (at - index * chunk_), static_cast<size_t>(offset - at)});
        }
        iov.push_back({out, static_cast<size_t>(n)});
        run_end = offset + n;
      }
      offset += n;
      out += n;
      len -= n;
    }
  }
  if (!iov.empty()) FERRY_TRY_VOID(stream_read(iov, run_end));
  return {};
}

Result<void> ChunkReader::finish_scattered() { return close_stream(); }

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

std::shared_ptr<void> take_thread_read_buffers() { return std::shared_ptr<ThreadReadBuffers>(thread_buffers().release()); }

void adopt_thread_read_buffers(std::shared_ptr<void> buffers) {
  if (!buffers) return;
  // Only this file makes these handles, and a handle is adopted by one thread.
  auto b = std::static_pointer_cast<ThreadReadBuffers>(buffers);
  auto& mine = thread_buffers();
  mine = std::make_unique<ThreadReadBuffers>(std::move(*b));
}

}  // namespace ferry::image
