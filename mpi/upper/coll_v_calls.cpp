// SPDX-License-Identifier: Apache-2.0
// Gatherv, Scatterv, Allgatherv, Alltoallv, Reduce_scatter, Reduce_scatter_block, Scan, Exscan.
// Each bumps its communicator's collective count, like every collective (coll_calls.cpp).
//
// Buffers go through buffers.hpp. A buffer described by counts and displacements is handed over
// whole: `span` elements, span = max(displacement + count); when a derived datatype is packed
// into k elements of a predefined type per element, the counts and displacements the lower half
// gets are multiplied by k (element j of the buffer is packed at j * k). Reductions with a user
// op go to user_reduce (user_ops.hpp).
#include <algorithm>
#include <vector>

#include "buffers.hpp"
#include "state.hpp"
#include "user_ops.hpp"

using namespace ferry::mpi;

namespace {

int span_of(const int* counts, const int* displs, int n) {
  int span = 0;
  for (int i = 0; i < n; ++i)
    if (counts[i] > 0) span = std::max(span, displs[i] + counts[i]);
  return span;
}

// Packed elements per element (1 for a predefined datatype).
int factor(int packed_count, int count) { return count > 0 ? packed_count / count : 1; }

void put_scaled(std::vector<int>& out, std::size_t at, const int* values, int n, int k) {
  for (int i = 0; i < n; ++i) out[at + static_cast<std::size_t>(i)] = values[i] * k;
}

int v_collective(const char* fn, VKind kind, const void* sendbuf, int sendcount, const int* sendcounts,
                 const int* sdispls, MPI_Datatype sendtype, void* recvbuf, int recvcount, const int* recvcounts,
                 const int* rdispls, MPI_Datatype recvtype, int root, MPI_Comm comm) {
  CommRecord* c = comm_arg(fn, comm);
  bool rooted = kind == VKind::gatherv || kind == VKind::scatterv;
  if (rooted) {
    if (int rc = check_root(fn, c, root); rc != MPI_SUCCESS) return rc;
  }
  bool i_am_root = !rooted || c->rank == root;
  int n = c->size;
  auto un = static_cast<std::size_t>(n);
  VBuffers v;
  v.counts.assign(4 * un, 0);
  CollectiveBuffers& b = v.base;
  SendBuffer sb;
  RecvBuffer rb;
  bool send_matters = kind != VKind::scatterv || i_am_root;
  bool recv_matters = kind != VKind::gatherv || i_am_root;
  bool send_is_array = kind == VKind::scatterv || kind == VKind::alltoallv;
  bool recv_is_array = kind != VKind::scatterv;
  if (send_matters && sendbuf == MPI_IN_PLACE) {
    bool allowed = kind == VKind::allgatherv || kind == VKind::alltoallv || (kind == VKind::gatherv && i_am_root);
    if (!allowed) fatal(fn, "MPI_IN_PLACE as the send buffer here (MPI_ERR_BUFFER)");
    b.in_place = true;
  } else if (send_matters) {
    DatatypeRecord* t = type_arg(fn, sendtype);
    if (send_is_array) {
      int span = span_of(sendcounts, sdispls, n);
      sb = send_buffer(sendbuf, span, t);
      int k = factor(sb.count, span);
      put_scaled(v.counts, 0, sendcounts, n, k);
      put_scaled(v.counts, un, sdispls, n, k);
    } else {
      sb = send_buffer(sendbuf, sendcount, t);
      b.send_count = sb.count;
    }
    b.send = sb.span;
    b.send_type = sb.type;
  }
  if (recv_matters && recvbuf == MPI_IN_PLACE) {
    if (kind != VKind::scatterv || !i_am_root) fatal(fn, "MPI_IN_PLACE as the receive buffer here (MPI_ERR_BUFFER)");
    b.in_place = true;
  } else if (recv_matters) {
    DatatypeRecord* t = type_arg(fn, recvtype);
    if (recv_is_array) {
      int span = span_of(recvcounts, rdispls, n);
      rb = recv_buffer(recvbuf, span, t, /*fill=*/true);  // the gaps between blocks stay as they were
      int k = factor(rb.count, span);
      put_scaled(v.counts, 2 * un, recvcounts, n, k);
      put_scaled(v.counts, 3 * un, rdispls, n, k);
    } else {
      rb = recv_buffer(recvbuf, recvcount, t);
      b.recv_count = rb.count;
    }
    b.recv = rb.span;
    b.recv_type = rb.type;
  }
  if (b.in_place && kind != VKind::scatterv && b.recv.data == nullptr)
    fatal(fn, "MPI_IN_PLACE without a receive buffer (MPI_ERR_BUFFER)");
  count_collective(c);
  check(fn, lower_for(fn).gatherv_like(kind, v, root, c->lh));
  if (b.recv.data != nullptr) rb.finish(rb.span.bytes);
  return MPI_SUCCESS;
}

// Reduce_scatter(_block), Scan, Exscan with a predefined op. `in_count`: elements of the input
// (and of the output when in place); `out_count`: elements this rank receives.
int reduce_more(const char* fn, RKind kind, const void* sendbuf, void* recvbuf, int in_count, int out_count,
                int count, const int* recv_counts, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm) {
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  OpRecord* o = op_arg(fn, op);
  const void* in = sendbuf == MPI_IN_PLACE ? nullptr : sendbuf;
  if (is_user_op(o)) {  // user_reduce counts its collective itself
    static constexpr ReduceKind kKinds[] = {ReduceKind::reduce_scatter, ReduceKind::reduce_scatter_block,
                                            ReduceKind::scan, ReduceKind::exscan};
    return user_reduce(fn, kKinds[static_cast<int>(kind)], in, recvbuf, count, recv_counts, t, o, 0, c);
  }
  count_collective(c);
  // Exscan leaves rank 0's output as it was: the output always travels in and out there.
  bool fill = in == nullptr || kind == RKind::exscan;
  RecvBuffer rb = recv_buffer(recvbuf, in == nullptr ? in_count : out_count, t, fill);
  SendBuffer sb = in == nullptr ? SendBuffer{} : send_buffer(in, in_count, t);
  int k = factor(in == nullptr ? rb.count : sb.count, in_count);
  std::vector<int> counts;
  if (recv_counts != nullptr)
    for (int i = 0; i < c->size; ++i) counts.push_back(recv_counts[i] * k);
  check(fn, lower_for(fn).reduce_more(kind, in == nullptr ? Span{} : sb.span, rb.span, count * k, rb.type, o->lh,
                                      counts, c->lh));
  rb.finish(rb.span.bytes);
  return MPI_SUCCESS;
}

}  // namespace

FERRY_MPI_FUNCTION(int, Gatherv, (const void* sendbuf, int sendcount, MPI_Datatype sendtype, void* recvbuf,
                                  const int recvcounts[], const int displs[], MPI_Datatype recvtype, int root,
                                  MPI_Comm comm)) {
  return v_collective("MPI_Gatherv", VKind::gatherv, sendbuf, sendcount, nullptr, nullptr, sendtype, recvbuf, 0,
                      recvcounts, displs, recvtype, root, comm);
}

FERRY_MPI_FUNCTION(int, Scatterv, (const void* sendbuf, const int sendcounts[], const int displs[],
                                   MPI_Datatype sendtype, void* recvbuf, int recvcount, MPI_Datatype recvtype,
                                   int root, MPI_Comm comm)) {
  return v_collective("MPI_Scatterv", VKind::scatterv, sendbuf, 0, sendcounts, displs, sendtype, recvbuf, recvcount,
                      nullptr, nullptr, recvtype, root, comm);
}

FERRY_MPI_FUNCTION(int, Allgatherv, (const void* sendbuf, int sendcount, MPI_Datatype sendtype, void* recvbuf,
                                     const int recvcounts[], const int displs[], MPI_Datatype recvtype,
                                     MPI_Comm comm)) {
  return v_collective("MPI_Allgatherv", VKind::allgatherv, sendbuf, sendcount, nullptr, nullptr, sendtype, recvbuf,
                      0, recvcounts, displs, recvtype, 0, comm);
}

FERRY_MPI_FUNCTION(int, Alltoallv, (const void* sendbuf, const int sendcounts[], const int sdispls[],
                                    MPI_Datatype sendtype, void* recvbuf, const int recvcounts[], const int rdispls[],
                                    MPI_Datatype recvtype, MPI_Comm comm)) {
  return v_collective("MPI_Alltoallv", VKind::alltoallv, sendbuf, 0, sendcounts, sdispls, sendtype, recvbuf, 0,
                      recvcounts, rdispls, recvtype, 0, comm);
}

FERRY_MPI_FUNCTION(int, Reduce_scatter, (const void* sendbuf, void* recvbuf, const int recvcounts[],
                                         MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)) {
  const char* fn = "MPI_Reduce_scatter";
  CommRecord* c = comm_arg(fn, comm);
  int total = 0;
  for (int i = 0; i < c->size; ++i) total += recvcounts[i];
  return reduce_more(fn, RKind::reduce_scatter, sendbuf, recvbuf, total, recvcounts[c->rank], recvcounts[c->rank],
                     recvcounts, datatype, op, comm);
}

FERRY_MPI_FUNCTION(int, Reduce_scatter_block, (const void* sendbuf, void* recvbuf, int recvcount,
                                               MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)) {
  const char* fn = "MPI_Reduce_scatter_block";
  CommRecord* c = comm_arg(fn, comm);
  return reduce_more(fn, RKind::reduce_scatter_block, sendbuf, recvbuf, recvcount * c->size, recvcount, recvcount,
                     nullptr, datatype, op, comm);
}

FERRY_MPI_FUNCTION(int, Scan, (const void* sendbuf, void* recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                               MPI_Comm comm)) {
  return reduce_more("MPI_Scan", RKind::scan, sendbuf, recvbuf, count, count, count, nullptr, datatype, op, comm);
}

FERRY_MPI_FUNCTION(int, Exscan, (const void* sendbuf, void* recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                                 MPI_Comm comm)) {
  return reduce_more("MPI_Exscan", RKind::exscan, sendbuf, recvbuf, count, count, count, nullptr, datatype, op, comm);
}
