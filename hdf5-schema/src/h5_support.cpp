// SPDX-License-Identifier: Apache-2.0
// HDF5 id ownership, error-stack capture and small attribute helpers (see h5_support.hpp).
#include "h5_support.hpp"

#include <cstdlib>

#include <mutex>

namespace ferry::image::h5 {

bool Id::reset(hid_t id) noexcept {
  bool ok = true;
  if (id_ >= 0) {
    herr_t rc = 0;
    switch (H5Iget_type(id_)) {
      case H5I_FILE: rc = H5Fclose(id_); break;
      case H5I_GROUP: rc = H5Gclose(id_); break;
      case H5I_DATASET: rc = H5Dclose(id_); break;
      case H5I_ATTR: rc = H5Aclose(id_); break;
      case H5I_DATATYPE: rc = H5Tclose(id_); break;
      case H5I_DATASPACE: rc = H5Sclose(id_); break;
      case H5I_GENPROP_LST: rc = H5Pclose(id_); break;
      default: rc = H5Idec_ref(id_); break;
    }
    ok = rc >= 0;
  }
  id_ = id;
  return ok;
}

void silence_errors() {
  static std::once_flag once;
  std::call_once(once, [] {
    // No HDF5 exit handler: every file we write is closed explicitly, and one that could not
    // be closed (see ImageWriter::Impl::abandon) must not crash the process at its exit.
    (void)H5dont_atexit();
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

namespace {
herr_t innermost(unsigned n, const H5E_error2_t* e, void* data) {
  // H5E_WALK_UPWARD starts at the innermost frame (where the error was detected): keep it.
  auto* out = static_cast<std::string*>(data);
  if (n == 0 && e->desc) *out = e->desc;
  return 0;
}
}  // namespace

std::string take_error() {
  std::string out;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &out);
  H5Eclear2(H5E_DEFAULT);
  return out;
}

Error corrupt(const std::string& file, const std::string& what) {
  std::string detail = take_error();
  std::string msg = "image " + file + ": " + what;
  if (!detail.empty()) msg += " (HDF5: " + detail + ")";
  return Error(errc::image_corrupt, msg);
}

// The sec2 driver reports a failed write(2) as "... errno = 28, error message = '...'" on
// several lines; keep the errno so the caller can tell a full disk from corruption.
Error write_error(const std::string& file, const std::string& what) {
  std::string detail = take_error();
  int err = EIO;
  if (auto pos = detail.find("errno = "); pos != std::string::npos) {
    int parsed = std::atoi(detail.c_str() + pos + 8);
    if (parsed > 0) err = parsed;
  }
  std::string msg = "write image " + file + ": " + what;
  if (err == EIO && !detail.empty()) {
    for (char& c : detail)
      if (c == '\n') c = ' ';
    msg += " (HDF5: " + detail + ")";
  }
  return Error(std::error_code(err, std::system_category()), msg);
}

Id make_string_type() {
  Id t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

bool link_exists(hid_t loc, std::string_view path) {
  std::string p(path);
  // Check each component: H5Lexists fails (rather than returning 0) if a parent is missing.
  size_t pos = 1;
  while (pos <= p.size()) {
    size_t next = p.find('/', pos);
    std::string prefix = p.substr(0, next);
    if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return true;
}

bool attr_exists(hid_t obj, std::string_view name) {
  htri_t r = H5Aexists(obj, std::string(name).c_str());
  if (r < 0) H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

bool write_u64_attr(hid_t obj, std::string_view name, uint64_t value) {
  Id space(H5Screate(H5S_SCALAR));
  Id attr(H5Acreate2(obj, std::string(name).c_str(), H5T_STD_U64LE, space.get(), H5P_DEFAULT,
                     H5P_DEFAULT));
  if (!attr) return false;
  return H5Awrite(attr.get(), H5T_NATIVE_UINT64, &value) >= 0;
}

bool read_u64_attr(hid_t obj, std::string_view name, uint64_t& value) {
  if (!attr_exists(obj, name)) return false;
  Id attr(H5Aopen(obj, std::string(name).c_str(), H5P_DEFAULT));
  if (!attr) return false;
  Id type(H5Aget_type(attr.get()));
  if (H5Tget_class(type.get()) != H5T_INTEGER) return false;
  return H5Aread(attr.get(), H5T_NATIVE_UINT64, &value) >= 0;
}

bool write_string_attr(hid_t obj, std::string_view name, const std::string& value) {
  Id space(H5Screate(H5S_SCALAR));
  Id type = make_string_type();
  Id attr(H5Acreate2(obj, std::string(name).c_str(), type.get(), space.get(), H5P_DEFAULT,
                     H5P_DEFAULT));
  if (!attr) return false;
  const char* p = value.c_str();
  return H5Awrite(attr.get(), type.get(), &p) >= 0;
}

bool read_string_attr(hid_t obj, std::string_view name, std::string& value) {
  if (!attr_exists(obj, name)) return false;
  Id attr(H5Aopen(obj, std::string(name).c_str(), H5P_DEFAULT));
  if (!attr) return false;
  Id ftype(H5Aget_type(attr.get()));
  if (H5Tget_class(ftype.get()) != H5T_STRING) return false;
  Id space(H5Aget_space(attr.get()));
  if (H5Sget_simple_extent_npoints(space.get()) != 1) return false;
  if (H5Tis_variable_str(ftype.get()) > 0) {
    Id mtype = make_string_type();
    char* p = nullptr;
    if (H5Aread(attr.get(), mtype.get(), &p) < 0) return false;
    value = p ? p : "";
    H5free_memory(p);
    return true;
  }
  // A fixed-length string (foreign writers): read its bytes, stop at the first NUL.
  size_t n = H5Tget_size(ftype.get());
  if (n == 0 || n > (1u << 20)) return false;
  std::string buf(n, '\0');
  Id mtype(H5Tcopy(ftype.get()));
  if (H5Aread(attr.get(), mtype.get(), buf.data()) < 0) return false;
  value = buf.substr(0, buf.find('\0'));
  return true;
}

}  // namespace ferry::image::h5
