// SPDX-License-Identifier: Apache-2.0
// Generic record <-> HDF5 mapping: a table is a list of Field<T> (name, stored type, accessors);
// from one list we derive the compound type, the write, the read and the canonical checksum,
// so writer and reader cannot disagree. Also used for groups whose fields are attributes.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "h5_support.hpp"

namespace ferry::image::tables {

// Stored column types. Integers are little-endian in the file; i32/i64 are two's complement.
enum class Col : uint8_t { u8, u32, i32, u64, i64, str };

template <class T>
struct Field {
  std::string_view name;
  Col col;
  std::function<uint64_t(const T&)> get;                 // numeric columns
  std::function<void(T&, uint64_t)> set;
  std::function<const std::string&(const T&)> get_str;   // Col::str
  std::function<void(T&, std::string)> set_str;
};

// A numeric member (integer, bool or enum) stored as `col`.
template <class T, class M>
Field<T> num(std::string_view name, Col col, M T::*m) {
  return {name, col, [m](const T& r) { return static_cast<uint64_t>(r.*m); },
          [m](T& r, uint64_t v) { r.*m = static_cast<M>(v); }, {}, {}};
}
// A numeric member of a nested struct member.
template <class T, class S, class M>
Field<T> num(std::string_view name, Col col, S T::*outer, M S::*m) {
  return {name, col, [outer, m](const T& r) { return static_cast<uint64_t>((r.*outer).*m); },
          [outer, m](T& r, uint64_t v) { (r.*outer).*m = static_cast<M>(v); }, {}, {}};
}
template <class T>
Field<T> str(std::string_view name, std::string T::*m) {
  return {name, Col::str, {}, {}, [m](const T& r) -> const std::string& { return r.*m; },
          [m](T& r, std::string v) { r.*m = std::move(v); }};
}
template <class T, class S>
Field<T> str(std::string_view name, S T::*outer, std::string S::*m) {
  return {name, Col::str, {}, {},
          [outer, m](const T& r) -> const std::string& { return (r.*outer).*m; },
          [outer, m](T& r, std::string v) { (r.*outer).*m = std::move(v); }};
}

// ---- non-template core (tables.cpp) ----------------------------------------------------------
struct Column {
  std::string_view name;
  Col col;
  size_t offset = 0;
};
struct Layout {
  std::vector<Column> cols;
  size_t size = 0;  // bytes of one packed in-memory record
};
Layout make_layout(std::vector<Column> cols);
void put_num(std::byte* rec, const Column& c, uint64_t v) noexcept;
void put_str(std::byte* rec, const Column& c, const char* s) noexcept;
void canon_num(h5::Canon& canon, Col col, uint64_t v) noexcept;

// Rows read back: numeric cells widened to u64 (signed ones sign-extended), strings copied.
struct RawTable {
  Layout layout;
  size_t rows = 0;
  std::vector<std::byte> buf;
  std::vector<std::string> strs;  // rows * (number of string columns), row-major
  size_t nstr = 0;
  uint64_t num(size_t row, size_t col) const noexcept;
  std::string& str(size_t row, size_t str_index) { return strs[row * nstr + str_index]; }
};

// Writes a compound dataset at `path` (parent groups must exist) and its xxh3 attribute.
Result<void> write_compound(hid_t file, std::string_view path, const Layout& layout,
                            const std::byte* rows, size_t nrows, uint64_t checksum,
                            const std::string& fname);
// Reads a compound dataset; every column of layout must exist in the file's type (extra file
// columns from a newer minor version are ignored). Returns the stored checksum.
Result<uint64_t> read_compound(hid_t file, std::string_view path, RawTable& out,
                               const std::string& fname);

// Numeric arrays: dims has 1 or 2 entries; elem is Col::u8 or Col::u64.
Result<void> write_array(hid_t file, std::string_view path, Col elem, const void* data,
                         std::span<const hsize_t> dims, const std::string& fname);
struct RawArray {
  std::vector<std::byte> data;
  std::vector<hsize_t> dims;
};
Result<RawArray> read_array(hid_t file, std::string_view path, Col elem, int rank,
                            const std::string& fname);
Result<void> write_strings(hid_t file, std::string_view path, const std::vector<std::string>& v,
                           const std::string& fname);
Result<std::vector<std::string>> read_strings(hid_t file, std::string_view path,
                                              const std::string& fname);

// Scalar attributes (numeric or string) on an object.
bool write_num_attr(hid_t obj, std::string_view name, Col col, uint64_t v);
bool read_num_attr(hid_t obj, std::string_view name, Col col, uint64_t& v);

// ---- templates -------------------------------------------------------------------------------
template <class T>
Layout layout_of(const std::vector<Field<T>>& fields) {
  std::vector<Column> cols;
  for (const auto& f : fields) cols.push_back({f.name, f.col, 0});
  return make_layout(std::move(cols));
}

template <class T>
void canon_row(h5::Canon& c, const std::vector<Field<T>>& fields, const T& row) {
  for (const auto& f : fields) {
    if (f.col == Col::str)
      c.str(f.get_str(row));
    else
      canon_num(c, f.col, f.get(row));
  }
}

template <class T>
uint64_t table_checksum(const std::vector<Field<T>>& fields, std::span<const T> rows) {
  h5::Canon c;
  c.u64(rows.size());
  for (const auto& r : rows) canon_row(c, fields, r);
  return c.digest();
}

template <class T>
Result<void> write_table(hid_t file, std::string_view path, const std::vector<Field<T>>& fields,
                         std::span<const T> rows, const std::string& fname) {
  Layout layout = layout_of(fields);
  std::vector<std::byte> buf(layout.size * rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    std::byte* rec = buf.data() + i * layout.size;
    for (size_t k = 0; k < fields.size(); ++k) {
      if (fields[k].col == Col::str)
        put_str(rec, layout.cols[k], fields[k].get_str(rows[i]).c_str());
      else
        put_num(rec, layout.cols[k], fields[k].get(rows[i]));
    }
  }
  return write_compound(file, path, layout, buf.data(), rows.size(),
                        table_checksum(fields, rows), fname);
}

template <class T>
Result<std::vector<T>> read_table(hid_t file, std::string_view path,
                                  const std::vector<Field<T>>& fields, const std::string& fname) {
  RawTable raw;
  raw.layout = layout_of(fields);
  FERRY_TRY(stored, read_compound(file, path, raw, fname));
  std::vector<T> rows(raw.rows);
  for (size_t i = 0; i < raw.rows; ++i) {
    size_t s = 0;
    for (size_t k = 0; k < fields.size(); ++k) {
      if (fields[k].col == Col::str)
        fields[k].set_str(rows[i], std::move(raw.str(i, s++)));
      else
        fields[k].set(rows[i], raw.num(i, k));
    }
  }
  if (table_checksum(fields, std::span<const T>(rows)) != stored)
    return fail(errc::image_corrupt,
                "image " + fname + ": checksum mismatch in dataset " + std::string(path));
  return rows;
}

// Fields kept as scalar attributes of one object; checksum over them in order, stored in the
// attribute `checksum_name` of the same object.
template <class T>
uint64_t attrs_checksum(const std::vector<Field<T>>& fields, const T& v) {
  h5::Canon c;
  canon_row(c, fields, v);
  return c.digest();
}

template <class T>
bool write_attrs(hid_t obj, const std::vector<Field<T>>& fields, const T& v,
                 std::string_view checksum_name) {
  for (const auto& f : fields) {
    bool ok = f.col == Col::str ? h5::write_string_attr(obj, f.name, f.get_str(v))
                                : write_num_attr(obj, f.name, f.col, f.get(v));
    if (!ok) return false;
  }
  return h5::write_u64_attr(obj, checksum_name, attrs_checksum(fields, v));
}

// Reads the attributes into v; `where` names the object in messages ("/" or "/process").
template <class T>
Result<void> read_attrs(hid_t obj, const std::vector<Field<T>>& fields, T& v,
                        std::string_view checksum_name, std::string_view where,
                        const std::string& fname) {
  for (const auto& f : fields) {
    bool ok;
    if (f.col == Col::str) {
      std::string s;
      ok = h5::read_string_attr(obj, f.name, s);
      if (ok) f.set_str(v, std::move(s));
    } else {
      uint64_t n = 0;
      ok = read_num_attr(obj, f.name, f.col, n);
      if (ok) f.set(v, n);
    }
    if (!ok)
      return fail(h5::corrupt(fname, "missing or unreadable attribute " + std::string(f.name) +
                                         " of " + std::string(where)));
  }
  uint64_t stored = 0;
  if (!h5::read_u64_attr(obj, checksum_name, stored))
    return fail(h5::corrupt(fname, "missing attribute " + std::string(checksum_name) + " of " +
                                       std::string(where)));
  if (attrs_checksum(fields, v) != stored)
    return fail(errc::image_corrupt,
                "image " + fname + ": checksum mismatch in attributes of " + std::string(where));
  return {};
}

}  // namespace ferry::image::tables
