// SPDX-License-Identifier: Apache-2.0
// send_buffer / recv_buffer (buffers.hpp). A predefined datatype passes through: the spans are
// the application's own memory. A derived datatype (datatype_map.hpp) is packed into a contiguous
// stream of its basic predefined type (count = basic elements), and a receive lands in a staging
// stream that finish() unpacks into the application's buffer, leaving the gaps untouched.
#include "buffers.hpp"

#include "state.hpp"

namespace ferry::mpi {
namespace {

int basic_elements(std::size_t packed, const DatatypeRecord* basic) {
  return static_cast<int>(packed / static_cast<std::size_t>(basic->extent));
}

}  // namespace

SendBuffer send_buffer(const void* buf, int count, const DatatypeRecord* type) {
  SendBuffer b;
  if (type->map == nullptr) {
    b.span = {buf, span_bytes(type, count)};
    b.count = count;
    b.type = type->lh;
    return b;
  }
  b.packed.resize(packed_size(type, count));
  pack(buf, count, type, b.packed.data());
  b.span = {b.packed.data(), b.packed.size()};
  b.count = basic_elements(b.packed.size(), type->map->basic);
  b.type = type->map->basic->lh;
  return b;
}

RecvBuffer recv_buffer(void* buf, int count, const DatatypeRecord* type, bool fill) {
  RecvBuffer b;
  b.user = buf;
  b.user_type = type;
  b.user_count = count;
  if (type->map == nullptr) {
    b.span = {buf, span_bytes(type, count)};
    b.count = count;
    b.type = type->lh;
    return b;
  }
  b.map = TypeMapRef(type->map);
  b.staging.resize(packed_size(type, count));
  if (fill) pack(buf, count, type, b.staging.data());
  b.span = {b.staging.data(), b.staging.size()};
  b.count = basic_elements(b.staging.size(), type->map->basic);
  b.type = type->map->basic->lh;
  return b;
}

void RecvBuffer::finish(std::uint64_t bytes) {
  if (!map) return;
  const DatatypeRecord* basic = map->basic;
  // Whole basic elements received, as stream bytes (a pair type's padding included).
  std::uint64_t elements = basic->size > 0 ? bytes / static_cast<std::uint64_t>(basic->size) : 0;
  std::uint64_t stream = std::min<std::uint64_t>(elements * static_cast<std::uint64_t>(basic->extent),
                                                 staging.size());
  unpack(staging.data(), static_cast<std::size_t>(stream), user, user_count, *map.get());
}

}  // namespace ferry::mpi
