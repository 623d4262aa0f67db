// SPDX-License-Identifier: Apache-2.0
// send_buffer / recv_buffer (buffers.hpp). Today every datatype is predefined and contiguous:
// the spans are the application's own memory.
#include "buffers.hpp"

#include "state.hpp"

namespace ferry::mpi {

SendBuffer send_buffer(const void* buf, int count, const DatatypeRecord* type) {
  SendBuffer b;
  b.span = {buf, span_bytes(type, count)};
  b.count = count;
  b.type = type->lh;
  return b;
}

RecvBuffer recv_buffer(void* buf, int count, const DatatypeRecord* type, bool /*fill*/) {
  RecvBuffer b;
  b.span = {buf, span_bytes(type, count)};
  b.count = count;
  b.type = type->lh;
  b.user = buf;
  b.user_type = type;
  b.user_count = count;
  return b;
}

void RecvBuffer::finish(std::uint64_t /*bytes*/) {}

}  // namespace ferry::mpi
