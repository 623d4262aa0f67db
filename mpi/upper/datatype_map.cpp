// SPDX-License-Identifier: Apache-2.0
// The datatype engine (datatype_map.hpp): flattening constructors into block lists, bounds as
// Open MPI 4.1 computes them, and packing/unpacking application buffers.
#include "datatype_map.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "mpi/abi/predefined.def"
#include "state.hpp"

namespace ferry::mpi {
namespace {

enum : LhId {
#define FERRY_TYPE_ID(name, size, extent) kType_##name,
  FERRY_MPI_DATATYPE_LIST(FERRY_TYPE_ID)
#undef FERRY_TYPE_ID
};

constexpr std::string_view kTypeNames[] = {
#define FERRY_TYPE_NAME(name, size, extent) #name,
    FERRY_MPI_DATATYPE_LIST(FERRY_TYPE_NAME)
#undef FERRY_TYPE_NAME
};

// C alignment of a predefined datatype (the struct epsilon): complex types align as their
// parts, pair types (MPI_DOUBLE_INT...) as their larger member, the others as their size.
std::int64_t predefined_align(const DatatypeRecord* t) {
  std::string_view name = t->lh < std::size(kTypeNames) ? kTypeNames[t->lh] : std::string_view{};
  std::int64_t size = t->size;
  bool complex = name.find("cplex") != name.npos || name.find("complex") != name.npos;
  if (name == "float_int" || name == "short_int") return 4;
  if (name == "double_int" || name == "long_int") return 8;
  if (name == "longdbl_int") return 16;
  if (!name.empty() && name[0] == '2') return complex ? size / 4 : size / 2;
  if (complex) return size / 2;
  return std::clamp<std::int64_t>(size, 1, 16);
}

// The data bytes of one predefined element: one block, or two for the pair types whose extent
// has padding (MPI_DOUBLE_INT: 8 bytes at 0 and an int at 8, 16 bytes apart).
void predefined_data_blocks(const DatatypeRecord* t, std::vector<TypeBlock>& out) {
  if (t->size == t->extent) {
    out.push_back({0, t->size});
    return;
  }
  std::int64_t first = t->size - 4;
  out.push_back({0, first});
  out.push_back({(first + 3) / 4 * 4, 4});
}

// A predefined type seen as a map (built on the stack when a constructor names one).
TypeMap predefined_map(const DatatypeRecord* t) {
  TypeMap m;
  m.basic = t;
  m.basic_count = 1;
  m.packed_bytes = t->extent;
  m.size = t->size;
  m.lb = 0;
  m.ub = t->extent;
  std::vector<TypeBlock> data;
  predefined_data_blocks(t, data);
  m.true_lb = 0;
  m.true_ub = data.back().offset + data.back().bytes;
  m.align = predefined_align(t);
  m.blocks.push_back({0, t->extent});  // whole-element form
  m.committed = true;
  return m;
}

const TypeMap& view(const DatatypeRecord* t, TypeMap& scratch) {
  if (t->map != nullptr) return *t->map;
  scratch = predefined_map(t);
  return scratch;
}

// The child's blocks in data-only form (a heterogeneous parent): whole elements of a pair type
// are split into their data parts.
std::vector<TypeBlock> data_blocks(const TypeMap& m) {
  const DatatypeRecord* b = m.basic;
  bool whole_elements = b != byte_type() && b->size != b->extent;
  if (!whole_elements) return m.blocks;
  std::vector<TypeBlock> parts;
  predefined_data_blocks(b, parts);
  std::vector<TypeBlock> out;
  for (const TypeBlock& blk : m.blocks) {
    for (std::int64_t at = 0; at + b->extent <= blk.bytes; at += b->extent) {
      for (const TypeBlock& p : parts) out.push_back({blk.offset + at + p.offset, p.bytes});
    }
  }
  return out;
}

void append_block(std::vector<TypeBlock>& blocks, std::int64_t offset, std::int64_t bytes) {
  if (bytes <= 0) return;
  if (!blocks.empty() && blocks.back().offset + blocks.back().bytes == offset) {
    blocks.back().bytes += bytes;
    return;
  }
  blocks.push_back({offset, bytes});
}

DatatypeRecord* new_record(TypeMap* map) {
  auto* r = new DatatypeRecord{{kLiveMagic, Kind::datatype}, kLhNone, static_cast<std::int32_t>(map->size),
                               map->ub - map->lb, map};
  return r;
}

}  // namespace

TypeMapRef::TypeMapRef(TypeMap* map) : map_(map) {
  if (map_ != nullptr) ++map_->refs;
}
TypeMapRef::TypeMapRef(const TypeMapRef& other) : map_(other.map_) {
  if (map_ != nullptr) ++map_->refs;
}
TypeMapRef& TypeMapRef::operator=(TypeMapRef other) noexcept {
  std::swap(map_, other.map_);
  return *this;
}
TypeMapRef::~TypeMapRef() {
  if (map_ != nullptr && --map_->refs == 0) delete map_;
}

const DatatypeRecord* byte_type() { return predefined_type(kType_byte); }

bool is_derived(const DatatypeRecord* type) { return type->map != nullptr; }

DatatypeRecord* build_type(const std::vector<TypeEntry>& entries) {
  auto* m = new TypeMap;
  // The basic type: the one every child with data shares, else MPI_BYTE.
  const DatatypeRecord* basic = nullptr;
  bool homogeneous = true;
  TypeMap scratch;
  for (const TypeEntry& e : entries) {
    if (e.count <= 0) continue;
    const TypeMap& c = view(e.type, scratch);
    if (c.size <= 0) continue;
    if (basic == nullptr) basic = c.basic;
    else if (basic != c.basic) homogeneous = false;
  }
  if (basic == nullptr) basic = byte_type();
  if (!homogeneous) basic = byte_type();
  m->basic = basic;

  bool any_lb_mark = false, any_ub_mark = false, any_natural = false, any_true = false;
  std::int64_t mark_lb = 0, mark_ub = 0, nat_lb = 0, nat_ub = 0, t_lb = 0, t_ub = 0;
  for (const TypeEntry& e : entries) {
    if (e.count <= 0) continue;
    const TypeMap& c = view(e.type, scratch);
    std::int64_t ext = c.ub - c.lb;
    std::int64_t last = (e.count - 1) * ext;
    std::int64_t lo = e.displacement + std::min<std::int64_t>(0, last);
    std::int64_t hi = e.displacement + std::max<std::int64_t>(0, last);
    if (c.lb_marked) {
      mark_lb = any_lb_mark ? std::min(mark_lb, lo + c.lb) : lo + c.lb;
      any_lb_mark = true;
    }
    if (c.ub_marked) {
      mark_ub = any_ub_mark ? std::max(mark_ub, hi + c.ub) : hi + c.ub;
      any_ub_mark = true;
    }
    if (c.size > 0) {
      nat_lb = any_natural ? std::min(nat_lb, lo + c.lb) : lo + c.lb;
      nat_ub = any_natural ? std::max(nat_ub, hi + c.ub) : hi + c.ub;
      any_natural = true;
      t_lb = any_true ? std::min(t_lb, lo + c.true_lb) : lo + c.true_lb;
      t_ub = any_true ? std::max(t_ub, hi + c.true_ub) : hi + c.true_ub;
      any_true = true;
      m->align = std::max(m->align, c.align);
    }
    m->size += e.count * c.size;
    m->basic_count += e.count * c.basic_count;
    std::vector<TypeBlock> converted;
    const std::vector<TypeBlock>* blocks = &c.blocks;
    if (!homogeneous) {
      converted = data_blocks(c);
      blocks = &converted;
    }
    for (std::int64_t k = 0; k < e.count; ++k) {
      std::int64_t base = e.displacement + k * ext;
      for (const TypeBlock& b : *blocks) append_block(m->blocks, base + b.offset, b.bytes);
    }
  }
  m->lb_marked = any_lb_mark;
  m->ub_marked = any_ub_mark;
  m->lb = any_lb_mark ? mark_lb : (any_natural ? nat_lb : 0);
  m->ub = any_ub_mark ? mark_ub : (any_natural ? nat_ub : 0);
  if (!any_ub_mark && m->ub > m->lb) {
    std::int64_t ext = m->ub - m->lb;
    m->ub = m->lb + (ext + m->align - 1) / m->align * m->align;
  }
  m->true_lb = any_true ? t_lb : 0;
  m->true_ub = any_true ? t_ub : 0;
  // MPI_BYTE streams (heterogeneous, or bytes only) carry the data bytes alone.
  m->packed_bytes = basic == byte_type() ? m->size : m->basic_count * basic->extent;
  return new_record(m);
}

DatatypeRecord* resized_type(const DatatypeRecord* type, std::int64_t lb, std::int64_t extent) {
  TypeMap scratch;
  auto* m = new TypeMap(view(type, scratch));
  m->refs = 1;
  m->committed = false;
  m->lb = lb;
  m->ub = lb + extent;
  m->lb_marked = m->ub_marked = true;
  return new_record(m);
}

DatatypeRecord* dup_type(const DatatypeRecord* type) {
  if (type->map == nullptr) {
    TypeMap m = predefined_map(type);
    return new_record(new TypeMap(std::move(m)));
  }
  auto* m = new TypeMap(*type->map);
  m->refs = 1;
  return new_record(m);
}

void free_type(DatatypeRecord* type) {
  TypeMap* m = type->map;
  type->header.magic = 0;
  delete type;
  if (m != nullptr && --m->refs == 0) delete m;
}

TypeBounds bounds_of(const DatatypeRecord* type) {
  TypeMap scratch;
  const TypeMap& m = view(type, scratch);
  return {m.lb, m.ub - m.lb, m.true_lb, m.true_ub - m.true_lb};
}

std::int64_t elements_in(const DatatypeRecord* type, std::uint64_t bytes) {
  TypeMap scratch;
  const TypeMap& m = view(type, scratch);
  auto b = static_cast<std::int64_t>(bytes);
  if (m.basic != byte_type() || m.basic_count == m.size) {  // homogeneous
    std::int64_t unit = m.basic->size;
    if (unit <= 0 || b % unit != 0) return -1;
    return b / unit;
  }
  // Heterogeneous: whole elements only.
  if (m.size <= 0) return 0;
  if (b % m.size != 0) return -1;
  return b / m.size * m.basic_count;
}

std::size_t packed_size(const DatatypeRecord* type, int count) {
  if (count <= 0) return 0;
  std::int64_t per = type->map != nullptr ? type->map->packed_bytes : type->extent;
  return static_cast<std::size_t>(per) * static_cast<std::size_t>(count);
}

void pack(const void* buf, int count, const DatatypeRecord* type, std::byte* out) {
  if (count <= 0) return;
  if (type->map == nullptr) {
    std::memcpy(out, buf, packed_size(type, count));
    return;
  }
  const TypeMap& m = *type->map;
  auto at = reinterpret_cast<std::uintptr_t>(buf);
  std::int64_t ext = m.ub - m.lb;
  for (int e = 0; e < count; ++e) {
    std::uintptr_t base = at + static_cast<std::uintptr_t>(e * ext);
    for (const TypeBlock& b : m.blocks) {
      std::memcpy(out, reinterpret_cast<const void*>(base + static_cast<std::uintptr_t>(b.offset)),
                  static_cast<std::size_t>(b.bytes));
      out += b.bytes;
    }
  }
}

void unpack(const std::byte* in, std::size_t bytes, void* buf, int count, const TypeMap& m) {
  auto at = reinterpret_cast<std::uintptr_t>(buf);
  std::int64_t ext = m.ub - m.lb;
  for (int e = 0; e < count && bytes > 0; ++e) {
    std::uintptr_t base = at + static_cast<std::uintptr_t>(e * ext);
    for (const TypeBlock& b : m.blocks) {
      std::size_t n = std::min(bytes, static_cast<std::size_t>(b.bytes));
      std::memcpy(reinterpret_cast<void*>(base + static_cast<std::uintptr_t>(b.offset)), in, n);
      in += n;
      bytes -= n;
      if (bytes == 0) return;
    }
  }
}

void unpack(const std::byte* in, std::size_t bytes, void* buf, int count, const DatatypeRecord* type) {
  if (type->map == nullptr) {
    std::memcpy(buf, in, std::min(bytes, packed_size(type, count)));
    return;
  }
  unpack(in, bytes, buf, count, *type->map);
}

LayoutBuffer::LayoutBuffer(const DatatypeRecord* type, int count) {
  TypeMap scratch;
  const TypeMap& m = view(type, scratch);
  if (count <= 0 || m.blocks.empty()) {
    storage_.resize(1);
    return;
  }
  std::int64_t ext = m.ub - m.lb;
  std::int64_t lo = 0, hi = 0;
  bool first = true;
  for (const TypeBlock& b : m.blocks) {
    std::int64_t l = b.offset + std::min<std::int64_t>(0, (count - 1) * ext);
    std::int64_t h = b.offset + b.bytes + std::max<std::int64_t>(0, (count - 1) * ext);
    lo = first ? l : std::min(lo, l);
    hi = first ? h : std::max(hi, h);
    first = false;
  }
  storage_.assign(static_cast<std::size_t>(hi - lo), std::byte{0});
  origin_ = static_cast<std::uintptr_t>(lo);
}

}  // namespace ferry::mpi
