// SPDX-License-Identifier: Apache-2.0
// ChunkWriter / ChunkReader: direct chunk I/O on a 1-D uint8 dataset with per-chunk XXH3-64.
// Algorithm (writer): copy appended spans into a one-chunk buffer; when it is full (or at
// finish, partially full) hash its logical bytes, grow the extent to cover them, encode, and
// H5Dwrite_chunk it at its offset. The extent is grown, never shrunk, so HDF5 never rewrites a
// chunk behind our back.
#include "chunk_store.hpp"

#include <algorithm>
#include <cstring>

#include "ferry/common/hash.hpp"
#include "tables.hpp"

namespace ferry::image {

namespace {

// A chunk larger than this in a file is refused: it bounds the reader's buffers.
constexpr size_t kMaxChunkBytes = size_t{64} << 20;
constexpr size_t kMinChunkBytes = 4096;

// Dataset creation properties of a chunk stream: the single place that would add a filter
// (e.g. H5Pset_filter(dcpl, 32015 /* zstd */, H5Z_FLAG_MANDATORY, ...)).
h5::Id make_dcpl() {
  h5::Id dcpl(H5Pcreate(H5P_DATASET_CREATE));
  hsize_t chunk[1] = {kChunkBytes};
  H5Pset_chunk(dcpl.get(), 1, chunk);
  H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
  H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_INCR);
  return dcpl;
}

struct Encoded {
  const std::byte* data;
  size_t size;
  uint32_t filter_mask;  // HDF5 filter mask: bit i set = filter i of the pipeline skipped
};

// How a chunk is stored. `chunk` is a full chunk buffer of which the first `used` bytes are
// data. Raw encoding: zero the padding and store the whole chunk as is.
Encoded encode_chunk(std::span<std::byte> chunk, size_t used) {
  if (used < chunk.size()) std::memset(chunk.data() + used, 0, chunk.size() - used);
  return {chunk.data(), chunk.size(), 0};
}

// Inverse of encode_chunk: turns `stored_size` bytes in `stored` into a full chunk in `out`.
// Returns false if the stored form is not one this build produces.
bool decode_chunk(ChunkBuffer& stored, size_t stored_size, uint32_t filter_mask, size_t chunk,
                  ChunkBuffer& out) {
  if (filter_mask != 0 || stored_size != chunk) return false;
  std::swap(stored, out);  // raw: the stored bytes are the chunk
  return true;
}

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

Result<void> ChunkWriter::flush_chunk() {
  if (fill_ == 0) return {};
  uint64_t index = sums_.size();
  hsize_t offset[1] = {index * kChunkBytes};
  hsize_t extent[1] = {offset[0] + fill_};
  sums_.push_back(hash::xxh3_64({buf_.data.get(), fill_}));
  if (H5Dset_extent(dset_.get(), extent) < 0)
    return fail(h5::write_error(fname_, "extend dataset " + data_path_));
  Encoded e = encode_chunk(buf_.span(), fill_);
  if (H5Dwrite_chunk(dset_.get(), H5P_DEFAULT, e.filter_mask, offset, e.size, e.data) < 0)
    return fail(h5::write_error(fname_, "write " + chunk_label(data_path_, index, kChunkBytes,
                                                               extent[0])));
  stored_ += e.size;
  fill_ = 0;
  return {};
}

Result<void> ChunkWriter::finish() {
  size_t tail = fill_;
  FERRY_TRY_VOID(flush_chunk());
  if (tail > 0) {
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
  buf_ = ChunkBuffer();
  return {};
}

// ---- ChunkReader ------------------------------------------------------------------------------

Result<std::unique_ptr<ChunkReader>> ChunkReader::open(hid_t file, std::string data_path,
                                                       std::string sums_path,
                                                       uint64_t expected_size,
                                                       std::string fname) {
  auto r = std::unique_ptr<ChunkReader>(new ChunkReader());
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
  if (int nf = H5Pget_nfilters(dcpl.get()); nf != 0)
    return fail(errc::image_version, "image " + f + ": dataset " + p + " uses " +
                                         std::to_string(nf) +
                                         " HDF5 filter(s); this build reads raw chunks only");
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

Result<void> ChunkReader::load(uint64_t index) {
  if (index == cached_) return {};
  cached_ = UINT64_MAX;
  std::string label = chunk_label(data_path_, index, chunk_, size_);
  hsize_t offset[1] = {index * chunk_};
  hsize_t stored_size = 0;
  if (H5Dget_chunk_storage_size(dset_.get(), offset, &stored_size) < 0 || stored_size == 0)
    return fail(h5::corrupt(fname_, "missing " + label));
  if (stored_size > kMaxChunkBytes)
    return fail(errc::image_corrupt, "image " + fname_ + ": oversized " + label);
  stored_.allocate(std::max<size_t>(chunk_, stored_size));
  uint32_t mask = 0;
  if (H5Dread_chunk(dset_.get(), H5P_DEFAULT, offset, &mask, stored_.data.get()) < 0)
    return fail(h5::corrupt(fname_, "cannot read " + label));
  if (!decode_chunk(stored_, stored_size, mask, chunk_, cache_))
    return fail(errc::image_corrupt, "image " + fname_ + ": undecodable " + label);
  size_t used = static_cast<size_t>(std::min<uint64_t>(chunk_, size_ - index * chunk_));
  if (hash::xxh3_64({cache_.data.get(), used}) != sums_[index])
    return fail(errc::image_corrupt, "image " + fname_ + ": checksum mismatch in " + label);
  cached_ = index;
  return {};
}

Result<void> ChunkReader::read(uint64_t offset, std::span<std::byte> out) {
  if (offset > size_ || out.size() > size_ - offset)
    return fail(errc::image_corrupt, "image " + fname_ + ": read of " +
                                         std::to_string(out.size()) + " bytes at " +
                                         std::to_string(offset) + " beyond " + data_path_);
  while (!out.empty()) {
    uint64_t index = offset / chunk_;
    FERRY_TRY_VOID(load(index));
    size_t in = static_cast<size_t>(offset - index * chunk_);
    size_t n = std::min(out.size(), chunk_ - in);
    std::memcpy(out.data(), cache_.data.get() + in, n);
    out = out.subspan(n);
    offset += n;
  }
  return {};
}

Result<void> ChunkReader::verify_all() {
  for (uint64_t i = 0; i < sums_.size(); ++i) {
    cached_ = UINT64_MAX;  // force a fresh read and check
    FERRY_TRY_VOID(load(i));
  }
  return {};
}

}  // namespace ferry::image
