// SPDX-License-Identifier: Apache-2.0
// The upper half's description of a derived datatype (the datatype engine). A derived datatype
// never exists in the lower half: its type map is flattened here, at construction, into the list
// of memory blocks (offset from the buffer address, length in bytes) that one element covers, in
// type-map order, and one predefined "basic" type for the packed data:
//
// - homogeneous (every basic element has the same predefined type B): the blocks cover whole
//   elements of B, padding of pair types such as MPI_DOUBLE_INT included, so the packed stream is
//   `basic_count` contiguous elements of B; the lower half sends/reduces it as B (so predefined
//   reduction operations work on a contiguous or vector of MPI_DOUBLE);
// - heterogeneous: the blocks cover only the data bytes and the packed stream is MPI_BYTE.
//
// Construction (build_type): each constructor is a list of entries "n copies of child type C at
// displacement D, D + extent(C), ..."; the child's blocks are shifted and appended, adjacent blocks
// merged. Bounds follow MPI 3.1 §4.1.6 as Open MPI 4.1 computes them (checked against it): lb/ub
// are the extremes of the entries' lb/ub, but the explicit markers of a resized child win over the
// natural bounds; without an explicit upper bound the extent is rounded up to the largest alignment
// of the basic types (the epsilon, for every constructor). true_lb/true_ub ignore markers.
// Subarrays are built as their row blocks and resized to [0, the full array), as Open MPI does.
//
// The map lives in the application's heap, reference counted (the record, and every receive buffer
// that still has to unpack into it, hold a reference), so a checkpoint keeps it and a restart needs
// nothing: no replay.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "records.hpp"

namespace ferry::mpi {

struct TypeBlock {
  std::int64_t offset;  // bytes from the element's address (absolute with MPI_BOTTOM)
  std::int64_t bytes;
};

struct TypeMap {
  std::vector<TypeBlock> blocks;        // one element, type-map order
  const DatatypeRecord* basic = nullptr;  // predefined type of the packed stream
  std::int64_t basic_count = 0;         // basic elements per element (homogeneous); leaf count otherwise
  std::int64_t packed_bytes = 0;        // bytes one element takes in the packed stream
  std::int64_t size = 0;                // MPI_Type_size
  std::int64_t lb = 0, ub = 0;          // extent = ub - lb
  std::int64_t true_lb = 0, true_ub = 0;
  bool lb_marked = false, ub_marked = false;  // explicit bounds (MPI_Type_create_resized)
  std::int64_t align = 1;               // largest alignment of the basic types (the epsilon)
  bool committed = false;
  int refs = 1;
};

// A counted reference to a TypeMap (nullptr for a predefined datatype).
class TypeMapRef {
 public:
  TypeMapRef() = default;
  explicit TypeMapRef(TypeMap* map);
  TypeMapRef(const TypeMapRef& other);
  TypeMapRef(TypeMapRef&& other) noexcept : map_(other.map_) { other.map_ = nullptr; }
  TypeMapRef& operator=(TypeMapRef other) noexcept;
  ~TypeMapRef();
  const TypeMap* get() const { return map_; }
  const TypeMap* operator->() const { return map_; }
  explicit operator bool() const { return map_ != nullptr; }

 private:
  TypeMap* map_ = nullptr;
};

// One entry of a constructor: `count` copies of `type`, the first at `displacement` bytes.
struct TypeEntry {
  std::int64_t displacement;
  std::int64_t count;
  const DatatypeRecord* type;
};

// A new derived datatype record (heap) for the entries. Never fails: arguments are checked by
// the callers.
DatatypeRecord* build_type(const std::vector<TypeEntry>& entries);
// MPI_Type_create_resized / MPI_Type_dup (same bounds) / subarray's final resize.
DatatypeRecord* resized_type(const DatatypeRecord* type, std::int64_t lb, std::int64_t extent);
DatatypeRecord* dup_type(const DatatypeRecord* type);
// Drops the record's reference; the map goes when the last receive using it finished.
void free_type(DatatypeRecord* type);

bool is_derived(const DatatypeRecord* type);
const DatatypeRecord* byte_type();

// Bounds of any datatype (predefined ones included).
struct TypeBounds {
  std::int64_t lb, extent, true_lb, true_extent;
};
TypeBounds bounds_of(const DatatypeRecord* type);
// Basic elements in `bytes` of received data of `type`, or -1 (MPI_UNDEFINED) when it is not a
// whole number of them.
std::int64_t elements_in(const DatatypeRecord* type, std::uint64_t bytes);

// Packed stream bytes of `count` elements.
std::size_t packed_size(const DatatypeRecord* type, int count);
// Copies `count` elements at `buf` into the packed stream `out` (packed_size bytes).
void pack(const void* buf, int count, const DatatypeRecord* type, std::byte* out);
// Copies at most `bytes` of the packed stream `in` into `count` elements at `buf` (gaps untouched).
void unpack(const std::byte* in, std::size_t bytes, void* buf, int count, const TypeMap& map);
void unpack(const std::byte* in, std::size_t bytes, void* buf, int count, const DatatypeRecord* type);

// A zeroed scratch buffer laid out for `count` elements of `type` (what a user-defined reduction
// function receives): data() + every block offset is inside it.
class LayoutBuffer {
 public:
  LayoutBuffer(const DatatypeRecord* type, int count);
  void* data() { return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(storage_.data()) - origin_); }

 private:
  std::vector<std::byte> storage_;
  std::uintptr_t origin_ = 0;  // the lowest offset the layout touches
};

}  // namespace ferry::mpi
