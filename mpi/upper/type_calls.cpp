// SPDX-License-Identifier: Apache-2.0
// Datatype constructors and queries (MPI_Type_*, MPI_Get_address, MPI_Get_elements). Every
// constructor turns its arguments into entries "n copies of a child at a displacement" for the
// datatype engine (datatype_map.hpp); the new handle is a heap DatatypeRecord in the application's
// memory that the lower half never sees, so none of these calls reaches the lower half and a
// restart has nothing to replay for them.
#include <vector>

#include "datatype_map.hpp"
#include "state.hpp"

using namespace ferry::mpi;

namespace {

constexpr int kOrderC = 0;        // MPI_ORDER_C
constexpr int kOrderFortran = 1;  // MPI_ORDER_FORTRAN

// A datatype argument of a constructor or query: any live datatype except MPI_DATATYPE_NULL
// (a derived one may have size 0).
DatatypeRecord* any_type(const char* fn, MPI_Datatype type) {
  auto* r = as_record<DatatypeRecord>(type, Kind::datatype);
  if (r == nullptr) fatal(fn, "invalid datatype (MPI_ERR_TYPE)");
  if (r->map == nullptr && r->size <= 0) fatal(fn, "MPI_DATATYPE_NULL or an unsupported predefined datatype (MPI_ERR_TYPE)");
  return r;
}

void check_count(const char* fn, long long count) {
  if (count < 0) fatal(fn, "negative count (MPI_ERR_COUNT)");
}

int give(MPI_Datatype* newtype, DatatypeRecord* r) {
  *newtype = reinterpret_cast<MPI_Datatype>(r);
  return MPI_SUCCESS;
}

std::int64_t extent_of(const DatatypeRecord* t) { return bounds_of(t).extent; }

MPI_Datatype null_type() { return reinterpret_cast<MPI_Datatype>(const_cast<DatatypeRecord*>(predefined_type(0))); }

}  // namespace

FERRY_MPI_FUNCTION(int, Type_contiguous, (int count, MPI_Datatype oldtype, MPI_Datatype* newtype)) {
  const char* fn = "MPI_Type_contiguous";
  check_count(fn, count);
  DatatypeRecord* t = any_type(fn, oldtype);
  return give(newtype, build_type({{0, count, t}}));
}

FERRY_MPI_FUNCTION(int, Type_vector, (int count, int blocklength, int stride, MPI_Datatype oldtype,
                                      MPI_Datatype* newtype)) {
  const char* fn = "MPI_Type_vector";
  check_count(fn, count);
  check_count(fn, blocklength);
  DatatypeRecord* t = any_type(fn, oldtype);
  std::vector<TypeEntry> entries;
  for (int i = 0; i < count; ++i) entries.push_back({std::int64_t{i} * stride * extent_of(t), blocklength, t});
  return give(newtype, build_type(entries));
}

FERRY_MPI_FUNCTION(int, Type_create_hvector, (int count, int blocklength, MPI_Aint stride, MPI_Datatype oldtype,
                                              MPI_Datatype* newtype)) {
  const char* fn = "MPI_Type_create_hvector";
  check_count(fn, count);
  check_count(fn, blocklength);
  DatatypeRecord* t = any_type(fn, oldtype);
  std::vector<TypeEntry> entries;
  for (int i = 0; i < count; ++i) entries.push_back({std::int64_t{i} * stride, blocklength, t});
  return give(newtype, build_type(entries));
}

FERRY_MPI_FUNCTION(int, Type_indexed, (int count, const int blocklengths[], const int displacements[],
                                       MPI_Datatype oldtype, MPI_Datatype* newtype)) {
  const char* fn = "MPI_Type_indexed";
  check_count(fn, count);
  DatatypeRecord* t = any_type(fn, oldtype);
  std::vector<TypeEntry> entries;
  for (int i = 0; i < count; ++i) {
    check_count(fn, blocklengths[i]);
    entries.push_back({std::int64_t{displacements[i]} * extent_of(t), blocklengths[i], t});
  }
  return give(newtype, build_type(entries));
}

FERRY_MPI_FUNCTION(int, Type_create_hindexed, (int count, const int blocklengths[], const MPI_Aint displacements[],
                                               MPI_Datatype oldtype, MPI_Datatype* newtype)) {
  const char* fn = "MPI_Type_create_hindexed";
  check_count(fn, count);
  DatatypeRecord* t = any_type(fn, oldtype);
  std::vector<TypeEntry> entries;
  for (int i = 0; i < count; ++i) {
    check_count(fn, blocklengths[i]);
    entries.push_back({displacements[i], blocklengths[i], t});
  }
  return give(newtype, build_type(entries));
}

FERRY_MPI_FUNCTION(int, Type_create_indexed_block, (int count, int blocklength, const int displacements[],
                                                    MPI_Datatype oldtype, MPI_Datatype* newtype)) {
  const char* fn = "MPI_Type_create_indexed_block";
  check_count(fn, count);
  check_count(fn, blocklength);
  DatatypeRecord* t = any_type(fn, oldtype);
  std::vector<TypeEntry> entries;
  for (int i = 0; i < count; ++i) entries.push_back({std::int64_t{displacements[i]} * extent_of(t), blocklength, t});
  return give(newtype, build_type(entries));
}

FERRY_MPI_FUNCTION(int, Type_create_hindexed_block, (int count, int blocklength, const MPI_Aint displacements[],
                                                     MPI_Datatype oldtype, MPI_Datatype* newtype)) {
  const char* fn = "MPI_Type_create_hindexed_block";
  check_count(fn, count);
  check_count(fn, blocklength);
  DatatypeRecord* t = any_type(fn, oldtype);
  std::vector<TypeEntry> entries;
  for (int i = 0; i < count; ++i) entries.push_back({displacements[i], blocklength, t});
  return give(newtype, build_type(entries));
}

FERRY_MPI_FUNCTION(int, Type_create_struct, (int count, const int blocklengths[], const MPI_Aint displacements[],
                                             const MPI_Datatype types[], MPI_Datatype* newtype)) {
  const char* fn = "MPI_Type_create_struct";
  check_count(fn, count);
  std::vector<TypeEntry> entries;
  for (int i = 0; i < count; ++i) {
    check_count(fn, blocklengths[i]);
    entries.push_back({displacements[i], blocklengths[i], any_type(fn, types[i])});
  }
  return give(newtype, build_type(entries));
}

// Rows of the subarray (runs along the fastest dimension) as entries, then resized to the whole
// array [0, product(sizes) * extent), as Open MPI does.
FERRY_MPI_FUNCTION(int, Type_create_subarray, (int ndims, const int sizes[], const int subsizes[], const int starts[],
                                               int order, MPI_Datatype oldtype, MPI_Datatype* newtype)) {
  const char* fn = "MPI_Type_create_subarray";
  if (ndims <= 0) fatal(fn, "ndims must be positive (MPI_ERR_DIMS)");
  if (order != kOrderC && order != kOrderFortran) fatal(fn, "order is neither MPI_ORDER_C nor MPI_ORDER_FORTRAN (MPI_ERR_ARG)");
  DatatypeRecord* t = any_type(fn, oldtype);
  std::int64_t ext = extent_of(t);
  // dims[0] is the slowest dimension, dims[ndims-1] the fastest.
  std::vector<int> dims(static_cast<std::size_t>(ndims));
  for (int i = 0; i < ndims; ++i) dims[static_cast<std::size_t>(i)] = order == kOrderC ? i : ndims - 1 - i;
  std::int64_t total = 1;
  for (int d = 0; d < ndims; ++d) {
    if (sizes[d] <= 0 || subsizes[d] <= 0 || starts[d] < 0 || starts[d] + subsizes[d] > sizes[d]) {
      fatal(fn, "a subarray outside its array (MPI_ERR_ARG)");
    }
    total *= sizes[d];
  }
  // Element strides of each dimension.
  std::vector<std::int64_t> stride(static_cast<std::size_t>(ndims));
  std::int64_t s = 1;
  for (int k = ndims - 1; k >= 0; --k) {
    int d = dims[static_cast<std::size_t>(k)];
    stride[static_cast<std::size_t>(d)] = s;
    s *= sizes[d];
  }
  int fast = dims[static_cast<std::size_t>(ndims - 1)];
  std::vector<TypeEntry> entries;
  std::vector<int> index(static_cast<std::size_t>(ndims), 0);  // over the slower dimensions
  for (;;) {
    std::int64_t offset = starts[fast] * stride[static_cast<std::size_t>(fast)];
    for (int k = 0; k < ndims - 1; ++k) {
      int d = dims[static_cast<std::size_t>(k)];
      offset += (starts[d] + index[static_cast<std::size_t>(d)]) * stride[static_cast<std::size_t>(d)];
    }
    entries.push_back({offset * ext, subsizes[fast], t});
    int k = ndims - 2;
    for (; k >= 0; --k) {
      int d = dims[static_cast<std::size_t>(k)];
      if (++index[static_cast<std::size_t>(d)] < subsizes[d]) break;
      index[static_cast<std::size_t>(d)] = 0;
    }
    if (k < 0) break;
  }
  DatatypeRecord* rows = build_type(entries);
  DatatypeRecord* r = resized_type(rows, 0, total * ext);
  free_type(rows);
  return give(newtype, r);
}

FERRY_MPI_FUNCTION(int, Type_create_resized, (MPI_Datatype oldtype, MPI_Aint lb, MPI_Aint extent,
                                              MPI_Datatype* newtype)) {
  return give(newtype, resized_type(any_type("MPI_Type_create_resized", oldtype), lb, extent));
}

FERRY_MPI_FUNCTION(int, Type_dup, (MPI_Datatype oldtype, MPI_Datatype* newtype)) {
  return give(newtype, dup_type(any_type("MPI_Type_dup", oldtype)));
}

FERRY_MPI_FUNCTION(int, Type_commit, (MPI_Datatype * type)) {
  DatatypeRecord* t = any_type("MPI_Type_commit", *type);
  if (t->map != nullptr) t->map->committed = true;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Type_free, (MPI_Datatype * type)) {
  const char* fn = "MPI_Type_free";
  DatatypeRecord* t = any_type(fn, *type);
  if (t->map == nullptr) fatal(fn, "a predefined datatype cannot be freed (MPI_ERR_TYPE)");
  free_type(t);
  *type = null_type();
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Type_size, (MPI_Datatype type, int* size)) {
  *size = any_type("MPI_Type_size", type)->size;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Type_size_x, (MPI_Datatype type, MPI_Count* size)) {
  *size = any_type("MPI_Type_size_x", type)->size;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Type_get_extent, (MPI_Datatype type, MPI_Aint* lb, MPI_Aint* extent)) {
  TypeBounds b = bounds_of(any_type("MPI_Type_get_extent", type));
  *lb = b.lb;
  *extent = b.extent;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Type_get_extent_x, (MPI_Datatype type, MPI_Count* lb, MPI_Count* extent)) {
  TypeBounds b = bounds_of(any_type("MPI_Type_get_extent_x", type));
  *lb = b.lb;
  *extent = b.extent;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Type_get_true_extent, (MPI_Datatype type, MPI_Aint* true_lb, MPI_Aint* true_extent)) {
  TypeBounds b = bounds_of(any_type("MPI_Type_get_true_extent", type));
  *true_lb = b.true_lb;
  *true_extent = b.true_extent;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Type_get_true_extent_x, (MPI_Datatype type, MPI_Count* true_lb, MPI_Count* true_extent)) {
  TypeBounds b = bounds_of(any_type("MPI_Type_get_true_extent_x", type));
  *true_lb = b.true_lb;
  *true_extent = b.true_extent;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Get_address, (const void* location, MPI_Aint* address)) {
  *address = reinterpret_cast<MPI_Aint>(location);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Get_elements, (const MPI_Status* status, MPI_Datatype type, int* count)) {
  std::int64_t n = elements_in(any_type("MPI_Get_elements", type), status->_ucount);
  *count = n < 0 ? MPI_UNDEFINED : static_cast<int>(n);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Get_elements_x, (const MPI_Status* status, MPI_Datatype type, MPI_Count* count)) {
  std::int64_t n = elements_in(any_type("MPI_Get_elements_x", type), status->_ucount);
  *count = n < 0 ? MPI_UNDEFINED : n;
  return MPI_SUCCESS;
}
