// SPDX-License-Identifier: Apache-2.0
// Non-template half of tables.hpp: packed compound layouts, dataset and attribute I/O with
// checksums, and the bounds that keep a crafted image from asking for huge allocations.
#include "tables.hpp"

#include <algorithm>
#include <cstring>

#include "ferry/image/names.hpp"

namespace ferry::image::tables {

namespace {

// A metadata table larger than this is refused as corrupt (a process has far fewer regions,
// fds or threads); it bounds what a crafted dataspace can make us allocate.
constexpr hsize_t kMaxRows = hsize_t{1} << 24;
constexpr hsize_t kMaxArrayBytes = hsize_t{1} << 30;

size_t width(Col c) {
  switch (c) {
    case Col::u8: return 1;
    case Col::u32:
    case Col::i32: return 4;
    case Col::u64:
    case Col::i64: return 8;
    case Col::str: return sizeof(char*);
  }
  return 8;
}

hid_t file_type(Col c) {
  switch (c) {
    case Col::u8: return H5T_STD_U8LE;
    case Col::u32: return H5T_STD_U32LE;
    case Col::i32: return H5T_STD_I32LE;
    case Col::u64: return H5T_STD_U64LE;
    case Col::i64: return H5T_STD_I64LE;
    case Col::str: break;
  }
  return H5T_STD_U64LE;
}

hid_t mem_type(Col c) {
  switch (c) {
    case Col::u8: return H5T_NATIVE_UINT8;
    case Col::u32: return H5T_NATIVE_UINT32;
    case Col::i32: return H5T_NATIVE_INT32;
    case Col::u64: return H5T_NATIVE_UINT64;
    case Col::i64: return H5T_NATIVE_INT64;
    case Col::str: break;
  }
  return H5T_NATIVE_UINT64;
}

// A transfer property list whose type-conversion and background buffers hold `rows` elements
// of the larger of the two types, at most HDF5's default of 1 MiB (which it calloc's at every
// H5Dread/H5Dwrite that converts: on the project VM a fresh page costs a hypervisor fault on
// first touch, so each table of a few KiB touched 2 MiB; an incremental restore opens 11
// images, a checkpoint writes ~20 tables).
h5::Id sized_dxpl(hid_t ftype, hid_t mtype, size_t rows) {
  constexpr size_t kDefault = size_t{1} << 20;
  const size_t elem = std::max(H5Tget_size(ftype), H5Tget_size(mtype));
  h5::Id dxpl(H5Pcreate(H5P_DATASET_XFER));
  if (dxpl && elem > 0) {
    const size_t want = std::clamp(elem * std::max<size_t>(rows, 1), std::max<size_t>(elem, 4096), std::max(kDefault, elem));
    (void)H5Pset_buffer(dxpl.get(), want, nullptr, nullptr);
  }
  return dxpl;
}

// The list to pass: the sized one, or HDF5's default if creating it failed.
hid_t xfer(const h5::Id& dxpl) { return dxpl ? dxpl.get() : H5P_DEFAULT; }

h5::Id make_compound(const Layout& layout, bool for_file) {
  h5::Id t(H5Tcreate(H5T_COMPOUND, layout.size));
  h5::Id str = h5::make_string_type();
  for (const auto& c : layout.cols) {
    hid_t member = c.col == Col::str ? str.get() : (for_file ? file_type(c.col) : mem_type(c.col));
    H5Tinsert(t.get(), std::string(c.name).c_str(), c.offset, member);
  }
  return t;
}

std::string spath(std::string_view p) { return std::string(p); }

Result<void> write_checksum(hid_t dset, uint64_t sum, std::string_view path,
                            const std::string& fname) {
  if (!h5::write_u64_attr(dset, names::kXxh3, sum))
    return fail(h5::write_error(fname, "write checksum of " + spath(path)));
  return {};
}

Result<h5::Id> open_dataset(hid_t file, std::string_view path, const std::string& fname) {
  if (!h5::link_exists(file, path))
    return fail(errc::image_corrupt, "image " + fname + ": missing dataset " + spath(path));
  h5::Id d(H5Dopen2(file, spath(path).c_str(), H5P_DEFAULT));
  if (!d) return fail(h5::corrupt(fname, "cannot open dataset " + spath(path)));
  return d;
}

Result<uint64_t> stored_checksum(hid_t dset, std::string_view path, const std::string& fname) {
  uint64_t v = 0;
  if (!h5::read_u64_attr(dset, names::kXxh3, v))
    return fail(h5::corrupt(fname, "missing checksum attribute of " + spath(path)));
  return v;
}

}  // namespace

Layout make_layout(std::vector<Column> cols) {
  Layout l;
  size_t off = 0;
  for (auto& c : cols) {
    c.offset = off;
    off += width(c.col);
  }
  l.cols = std::move(cols);
  l.size = off;
  return l;
}

void put_num(std::byte* rec, const Column& c, uint64_t v) noexcept {
  // Little-endian host: the low `width` bytes of v are the narrower integer.
  std::memcpy(rec + c.offset, &v, width(c.col));
}

void put_str(std::byte* rec, const Column& c, const char* s) noexcept {
  std::memcpy(rec + c.offset, &s, sizeof s);
}

void canon_num(h5::Canon& canon, Col col, uint64_t v) noexcept {
  switch (col) {
    case Col::u8: canon.u8(static_cast<uint8_t>(v)); break;
    case Col::u32:
    case Col::i32: canon.u32(static_cast<uint32_t>(v)); break;
    default: canon.u64(v); break;
  }
}

uint64_t RawTable::num(size_t row, size_t col) const noexcept {
  const Column& c = layout.cols[col];
  const std::byte* p = buf.data() + row * layout.size + c.offset;
  switch (c.col) {
    case Col::u8: return static_cast<uint8_t>(*p);
    case Col::u32: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case Col::i32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return static_cast<uint64_t>(static_cast<int64_t>(v));
    }
    default: {
      uint64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
  }
}

Result<void> write_compound(hid_t file, std::string_view path, const Layout& layout,
                            const std::byte* rows, size_t nrows, uint64_t checksum,
                            const std::string& fname) {
  h5::Id ftype = make_compound(layout, true);
  h5::Id mtype = make_compound(layout, false);
  hsize_t dims[1] = {nrows};
  h5::Id space(H5Screate_simple(1, dims, nullptr));
  h5::Id dset(H5Dcreate2(file, spath(path).c_str(), ftype.get(), space.get(), H5P_DEFAULT,
                         H5P_DEFAULT, H5P_DEFAULT));
  if (!dset) return fail(h5::write_error(fname, "create dataset " + spath(path)));
  h5::Id dxpl = sized_dxpl(ftype.get(), mtype.get(), nrows);
  if (nrows > 0 && H5Dwrite(dset.get(), mtype.get(), H5S_ALL, H5S_ALL, xfer(dxpl), rows) < 0)
    return fail(h5::write_error(fname, "write dataset " + spath(path)));
  return write_checksum(dset.get(), checksum, path, fname);
}

Result<uint64_t> read_compound(hid_t file, std::string_view path, RawTable& out,
                               const std::string& fname) {
  FERRY_TRY(dset, open_dataset(file, path, fname));
  h5::Id ftype(H5Dget_type(dset.get()));
  if (H5Tget_class(ftype.get()) != H5T_COMPOUND)
    return fail(errc::image_corrupt, "image " + fname + ": dataset " + spath(path) +
                                         " is not a table (compound type expected)");
  for (const auto& c : out.layout.cols) {
    int idx = H5Tget_member_index(ftype.get(), std::string(c.name).c_str());
    if (idx < 0) {
      h5::take_error();
      return fail(errc::image_corrupt, "image " + fname + ": dataset " + spath(path) +
                                           " lacks field " + std::string(c.name));
    }
    h5::Id mt(H5Tget_member_type(ftype.get(), static_cast<unsigned>(idx)));
    H5T_class_t cls = H5Tget_class(mt.get());
    if ((c.col == Col::str) != (cls == H5T_STRING) || (c.col != Col::str && cls != H5T_INTEGER))
      return fail(errc::image_corrupt, "image " + fname + ": field " + std::string(c.name) +
                                           " of " + spath(path) + " has the wrong type");
  }
  h5::Id space(H5Dget_space(dset.get()));
  hsize_t dims[1] = {0};
  if (H5Sget_simple_extent_ndims(space.get()) != 1 ||
      H5Sget_simple_extent_dims(space.get(), dims, nullptr) < 0 || dims[0] > kMaxRows)
    return fail(h5::corrupt(fname, "bad shape of dataset " + spath(path)));
  out.rows = dims[0];
  out.buf.assign(out.layout.size * out.rows, std::byte{0});
  out.nstr = 0;
  for (const auto& c : out.layout.cols) out.nstr += c.col == Col::str;
  out.strs.assign(out.rows * out.nstr, std::string());
  if (out.rows > 0) {
    h5::Id mtype = make_compound(out.layout, false);
    h5::Id dxpl = sized_dxpl(ftype.get(), mtype.get(), out.rows);
    if (H5Dread(dset.get(), mtype.get(), H5S_ALL, H5S_ALL, xfer(dxpl), out.buf.data()) < 0)
      return fail(h5::corrupt(fname, "cannot read dataset " + spath(path)));
    for (size_t r = 0; r < out.rows; ++r) {
      size_t s = 0;
      for (const auto& c : out.layout.cols) {
        if (c.col != Col::str) continue;
        const char* p = nullptr;
        std::memcpy(&p, out.buf.data() + r * out.layout.size + c.offset, sizeof p);
        out.str(r, s++) = p ? p : "";
      }
    }
    H5Dvlen_reclaim(mtype.get(), space.get(), H5P_DEFAULT, out.buf.data());
  }
  return stored_checksum(dset.get(), path, fname);
}

Result<void> write_array(hid_t file, std::string_view path, Col elem, const void* data,
                         std::span<const hsize_t> dims, const std::string& fname) {
  h5::Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  h5::Id dset(H5Dcreate2(file, spath(path).c_str(), file_type(elem), space.get(), H5P_DEFAULT,
                         H5P_DEFAULT, H5P_DEFAULT));
  if (!dset) return fail(h5::write_error(fname, "create dataset " + spath(path)));
  hsize_t n = 1;
  for (hsize_t d : dims) n *= d;
  h5::Id dxpl = sized_dxpl(file_type(elem), mem_type(elem), n);
  if (n > 0 && H5Dwrite(dset.get(), mem_type(elem), H5S_ALL, H5S_ALL, xfer(dxpl), data) < 0)
    return fail(h5::write_error(fname, "write dataset " + spath(path)));
  h5::Canon c;
  for (hsize_t d : dims) c.u64(d);
  c.bytes(data, n * width(elem));
  return write_checksum(dset.get(), c.digest(), path, fname);
}

Result<RawArray> read_array(hid_t file, std::string_view path, Col elem, int rank,
                            const std::string& fname) {
  FERRY_TRY(dset, open_dataset(file, path, fname));
  h5::Id ftype(H5Dget_type(dset.get()));
  if (H5Tget_class(ftype.get()) != H5T_INTEGER)
    return fail(errc::image_corrupt,
                "image " + fname + ": dataset " + spath(path) + " is not an integer array");
  h5::Id space(H5Dget_space(dset.get()));
  RawArray out;
  out.dims.assign(static_cast<size_t>(rank), 0);
  if (H5Sget_simple_extent_ndims(space.get()) != rank ||
      H5Sget_simple_extent_dims(space.get(), out.dims.data(), nullptr) < 0)
    return fail(h5::corrupt(fname, "bad shape of dataset " + spath(path)));
  hsize_t n = 1;
  for (hsize_t d : out.dims) n *= d;
  if (n * width(elem) > kMaxArrayBytes)
    return fail(errc::image_corrupt, "image " + fname + ": dataset " + spath(path) + " too large");
  out.data.resize(n * width(elem));
  h5::Id dxpl = sized_dxpl(ftype.get(), mem_type(elem), n);
  if (n > 0 &&
      H5Dread(dset.get(), mem_type(elem), H5S_ALL, H5S_ALL, xfer(dxpl), out.data.data()) < 0)
    return fail(h5::corrupt(fname, "cannot read dataset " + spath(path)));
  FERRY_TRY(stored, stored_checksum(dset.get(), path, fname));
  h5::Canon c;
  for (hsize_t d : out.dims) c.u64(d);
  c.bytes(out.data.data(), out.data.size());
  if (c.digest() != stored)
    return fail(errc::image_corrupt,
                "image " + fname + ": checksum mismatch in dataset " + spath(path));
  return out;
}

Result<void> write_strings(hid_t file, std::string_view path, const std::vector<std::string>& v,
                           const std::string& fname) {
  h5::Id type = h5::make_string_type();
  hsize_t dims[1] = {v.size()};
  h5::Id space(H5Screate_simple(1, dims, nullptr));
  h5::Id dset(H5Dcreate2(file, spath(path).c_str(), type.get(), space.get(), H5P_DEFAULT,
                         H5P_DEFAULT, H5P_DEFAULT));
  if (!dset) return fail(h5::write_error(fname, "create dataset " + spath(path)));
  std::vector<const char*> ptrs;
  h5::Canon c;
  c.u64(v.size());
  for (const auto& s : v) {
    ptrs.push_back(s.c_str());
    c.str(s);
  }
  h5::Id dxpl = sized_dxpl(type.get(), type.get(), v.size());
  if (!v.empty() &&
      H5Dwrite(dset.get(), type.get(), H5S_ALL, H5S_ALL, xfer(dxpl), ptrs.data()) < 0)
    return fail(h5::write_error(fname, "write dataset " + spath(path)));
  return write_checksum(dset.get(), c.digest(), path, fname);
}

Result<std::vector<std::string>> read_strings(hid_t file, std::string_view path,
                                              const std::string& fname) {
  FERRY_TRY(dset, open_dataset(file, path, fname));
  h5::Id ftype(H5Dget_type(dset.get()));
  if (H5Tget_class(ftype.get()) != H5T_STRING || H5Tis_variable_str(ftype.get()) <= 0)
    return fail(errc::image_corrupt,
                "image " + fname + ": dataset " + spath(path) + " is not a list of strings");
  h5::Id space(H5Dget_space(dset.get()));
  hsize_t dims[1] = {0};
  if (H5Sget_simple_extent_ndims(space.get()) != 1 ||
      H5Sget_simple_extent_dims(space.get(), dims, nullptr) < 0 || dims[0] > kMaxRows)
    return fail(h5::corrupt(fname, "bad shape of dataset " + spath(path)));
  std::vector<std::string> out;
  if (dims[0] > 0) {
    h5::Id type = h5::make_string_type();
    std::vector<char*> ptrs(dims[0], nullptr);
    h5::Id dxpl = sized_dxpl(ftype.get(), type.get(), dims[0]);
    if (H5Dread(dset.get(), type.get(), H5S_ALL, H5S_ALL, xfer(dxpl), ptrs.data()) < 0)
      return fail(h5::corrupt(fname, "cannot read dataset " + spath(path)));
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, ptrs.data());
  }
  FERRY_TRY(stored, stored_checksum(dset.get(), path, fname));
  h5::Canon c;
  c.u64(out.size());
  for (const auto& s : out) c.str(s);
  if (c.digest() != stored)
    return fail(errc::image_corrupt,
                "image " + fname + ": checksum mismatch in dataset " + spath(path));
  return out;
}

bool write_num_attr(hid_t obj, std::string_view name, Col col, uint64_t v) {
  h5::Id space(H5Screate(H5S_SCALAR));
  h5::Id attr(H5Acreate2(obj, std::string(name).c_str(), file_type(col), space.get(),
                         H5P_DEFAULT, H5P_DEFAULT));
  if (!attr) return false;
  return H5Awrite(attr.get(), mem_type(col), &v) >= 0;  // low bytes: little-endian host
}

bool read_num_attr(hid_t obj, std::string_view name, Col col, uint64_t& v) {
  if (!h5::attr_exists(obj, name)) return false;
  h5::Id attr(H5Aopen(obj, std::string(name).c_str(), H5P_DEFAULT));
  if (!attr) return false;
  h5::Id type(H5Aget_type(attr.get()));
  if (H5Tget_class(type.get()) != H5T_INTEGER) return false;
  h5::Id space(H5Aget_space(attr.get()));
  if (H5Sget_simple_extent_npoints(space.get()) != 1) return false;
  bool is_signed = col == Col::i32 || col == Col::i64;
  if (is_signed) {
    int64_t s = 0;
    if (H5Aread(attr.get(), H5T_NATIVE_INT64, &s) < 0) return false;
    v = static_cast<uint64_t>(s);
  } else {
    if (H5Aread(attr.get(), H5T_NATIVE_UINT64, &v) < 0) return false;
  }
  return true;
}

}  // namespace ferry::image::tables
