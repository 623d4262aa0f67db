// SPDX-License-Identifier: Apache-2.0
// How an application buffer of any datatype reaches the lower half. The lower half sees only
// contiguous buffers of predefined datatypes: the data of a derived datatype is packed into a
// contiguous buffer before a send and unpacked after a receive, here in the upper half (the
// datatype engine), so a derived datatype never exists in the lower half and a restart has
// nothing to rebuild for it. A predefined datatype passes through unchanged (no copy).
//
// Every MPI_* entry point that hands a buffer to the lower half goes through send_buffer /
// recv_buffer: a receive's data is valid in the application's buffer only after finish().
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "datatype_map.hpp"
#include "records.hpp"

namespace ferry::mpi {

struct SendBuffer {
  Span span;                   // what the lower half sends
  int count = 0;               // in elements of `type` (for a derived datatype: basic elements)
  LhId type = kLhNone;         // a predefined datatype
  std::vector<std::byte> packed;  // the packed copy of a derived datatype's data (span points here)
};

struct RecvBuffer {
  MutSpan span;                // where the lower half writes
  int count = 0;
  LhId type = kLhNone;
  std::vector<std::byte> staging;  // a derived datatype's packed data (span points here)
  void* user = nullptr;            // the application's buffer, for finish()
  const DatatypeRecord* user_type = nullptr;
  int user_count = 0;
  TypeMapRef map;  // keeps a derived datatype's map alive until finish(), even after MPI_Type_free
  // Unpacks the `bytes` received into the application's buffer (nothing to do for a
  // predefined datatype). `bytes` may be the status's byte count or span.bytes: both give the
  // same number of basic elements (at most the staging's).
  void finish(std::uint64_t bytes);
};

// `count` elements of `type` at `buf` (buf may be MPI_BOTTOM with absolute displacements).
SendBuffer send_buffer(const void* buf, int count, const DatatypeRecord* type);
// With `fill` the packed staging starts with the buffer's current data (MPI_IN_PLACE, Bcast at
// the root, Sendrecv_replace: the buffer is input and output).
RecvBuffer recv_buffer(void* buf, int count, const DatatypeRecord* type, bool fill = false);

}  // namespace ferry::mpi
