// SPDX-License-Identifier: Apache-2.0
// Running channel calls against the real library (server.hpp). The argument slots of each call
// are listed in channel.hpp next to channel::Op; this file and upper/proxy_lower_half.cpp are the
// two ends and must agree.
//
// Nonblocking calls: an isend copies the payload into a proxy-owned buffer at once (the
// application may not touch its buffer until completion anyway, and the copy lets the shm data
// area be reused by the next call); an irecv lands in a proxy-owned buffer and wait/test copies
// the received bytes to the destination the upper half names at completion.
#include "server.hpp"

#include <algorithm>
#include <cstring>

#include "mpi/abi/predefined.def"

// MPI_LB/MPI_UB are exported but not declared by Debian's mpi.h (no MPI-1 compatibility).
extern "C" {
extern struct ompi_predefined_datatype_t ompi_mpi_lb;
extern struct ompi_predefined_datatype_t ompi_mpi_ub;
}

namespace ferry::mpi::proxy {

using channel::BufRef;
using channel::Call;
using channel::Op;
using channel::Reply;
using channel::Where;

namespace {
constexpr std::uint32_t kNone = 0xffff'ffffu;

void fill_status(const MPI_Status& st, Reply& reply) {
  reply.status.source = st.MPI_SOURCE;
  reply.status.tag = st.MPI_TAG;
  reply.status.error = st.MPI_ERROR;
  int bytes = 0;
  MPI_Get_count(&st, MPI_BYTE, &bytes);
  reply.status.bytes = bytes == MPI_UNDEFINED ? 0 : static_cast<std::uint64_t>(bytes);
}

// Bytes of memory that `packed_bytes` of data of `type` occupy in a contiguous user buffer.
std::size_t span_of(MPI_Datatype type, std::uint64_t packed_bytes) {
  int size = 0;
  MPI_Aint lb = 0, extent = 0;
  MPI_Type_size(type, &size);
  MPI_Type_get_extent(type, &lb, &extent);
  if (size <= 0) return 0;
  return static_cast<std::size_t>(packed_bytes / static_cast<std::uint64_t>(size)) *
         static_cast<std::size_t>(extent);
}
}  // namespace

Server::Server(channel::Layout* layout, pid_t app) : layout_(layout), memory_(layout, app) {
#define FERRY_REAL_TYPE(name, size, extent) types_.push_back((MPI_Datatype)&ompi_mpi_##name);
  FERRY_MPI_DATATYPE_LIST(FERRY_REAL_TYPE)
#undef FERRY_REAL_TYPE
#define FERRY_REAL_OP(name) ops_.push_back((MPI_Op)&ompi_mpi_op_##name);
  FERRY_MPI_OP_LIST(FERRY_REAL_OP)
#undef FERRY_REAL_OP
  comms_ = {MPI_COMM_WORLD, MPI_COMM_SELF, MPI_COMM_NULL};
}

MPI_Comm Server::comm(std::uint32_t id) const { return id < comms_.size() ? comms_[id] : MPI_COMM_NULL; }
MPI_Datatype Server::type(std::uint32_t id) const {
  return id < types_.size() ? types_[id] : MPI_DATATYPE_NULL;
}
MPI_Op Server::op(std::uint32_t id) const { return id < ops_.size() ? ops_[id] : MPI_OP_NULL; }

std::uint32_t Server::add_comm(MPI_Comm c) {
  for (std::size_t i = 3; i < comms_.size(); ++i) {
    if (comms_[i] == MPI_COMM_NULL) {
      comms_[i] = c;
      return static_cast<std::uint32_t>(i);
    }
  }
  comms_.push_back(c);
  return static_cast<std::uint32_t>(comms_.size() - 1);
}

std::uint32_t Server::add_request(PendingRequest r) {
  for (std::size_t i = 0; i < requests_.size(); ++i) {
    if (requests_[i].real == MPI_REQUEST_NULL) {
      requests_[i] = std::move(r);
      return static_cast<std::uint32_t>(i);
    }
  }
  requests_.push_back(std::move(r));
  return static_cast<std::uint32_t>(requests_.size() - 1);
}

// Reply: h[0] = id, i[0] = rank, i[1] = size; data area: the members' world ranks.
void Server::describe_new_comm(MPI_Comm c, std::uint32_t id, Reply& reply) {
  reply.h[0] = id;
  if (c == MPI_COMM_NULL) return;
  int rank = 0, size = 0;
  MPI_Comm_rank(c, &rank);
  MPI_Comm_size(c, &size);
  reply.i[0] = rank;
  reply.i[1] = size;
  MPI_Group group, world;
  MPI_Comm_group(c, &group);
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  std::vector<int> ranks(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) ranks[static_cast<std::size_t>(r)] = r;
  auto* out = reinterpret_cast<int*>(layout_->data);
  if (static_cast<std::size_t>(size) * sizeof(int) <= channel::kDataBytes) {
    MPI_Group_translate_ranks(group, size, ranks.data(), world, out);
  }
  MPI_Group_free(&group);
  MPI_Group_free(&world);
}

bool Server::serve(const Call& call, Reply& reply) {
  reply = Reply{};
  switch (call.op) {
    case Op::hello:
      reply.rc = hello(reply);
      return true;
    case Op::finalize:
      reply.rc = MPI_Finalize();
      return reply.rc != MPI_SUCCESS;
    case Op::abort:
      MPI_Abort(comm(call.h[0]), call.i[0]);
      return true;
    case Op::processor_name: {
      int len = 0;
      reply.rc = MPI_Get_processor_name(reinterpret_cast<char*>(layout_->data), &len);
      reply.i[0] = len;
      return true;
    }
    case Op::send:
    case Op::ssend:
    case Op::recv:
    case Op::sendrecv:
    case Op::probe:
      reply.rc = p2p(call, reply);
      return true;
    case Op::isend:
    case Op::irecv:
    case Op::wait:
    case Op::test:
      reply.rc = requests(call, reply);
      return true;
    case Op::barrier:
    case Op::bcast:
    case Op::reduce:
    case Op::allreduce:
    case Op::gather:
    case Op::scatter:
    case Op::allgather:
    case Op::alltoall:
      reply.rc = collective(call, reply);
      return true;
    case Op::comm_dup:
    case Op::comm_split:
    case Op::comm_free:
      reply.rc = comms(call, reply);
      return true;
  }
  reply.rc = MPI_ERR_INTERN;
  return true;
}

// Reply: i[0] = world rank, i[1] = world size, i[2] = provided thread level; data area: one
// {int32 size, int32 pad, int64 extent} per predefined datatype.
int Server::hello(Reply& reply) {
  MPI_Comm_rank(MPI_COMM_WORLD, &reply.i[0]);
  MPI_Comm_size(MPI_COMM_WORLD, &reply.i[1]);
  MPI_Query_thread(&reply.i[2]);
  struct SizeRecord {
    std::int32_t size;
    std::int32_t pad;
    std::int64_t extent;
  };
  auto* out = reinterpret_cast<SizeRecord*>(layout_->data);
  for (std::size_t i = 0; i < types_.size(); ++i) {
    int size = 0;
    MPI_Aint lb = 0, extent = 0;
    if (types_[i] != MPI_DATATYPE_NULL) {
      MPI_Type_size(types_[i], &size);
      MPI_Type_get_extent(types_[i], &lb, &extent);
    }
    out[i] = SizeRecord{size, 0, static_cast<std::int64_t>(extent)};
  }
  return MPI_SUCCESS;
}

int Server::p2p(const Call& call, Reply& reply) {
  MPI_Status st{};
  if (call.op == Op::send || call.op == Op::ssend) {
    void* data = memory_.read(call.buf[0], scratch_[0]);
    if (data == nullptr && call.buf[0].bytes != 0) return MPI_ERR_BUFFER;
    return call.op == Op::send
               ? MPI_Send(data, call.i[0], type(call.h[0]), call.i[1], call.i[2], comm(call.h[1]))
               : MPI_Ssend(data, call.i[0], type(call.h[0]), call.i[1], call.i[2], comm(call.h[1]));
  }
  if (call.op == Op::probe) {
    int found = 1;
    int rc = call.i[0] ? MPI_Probe(call.i[1], call.i[2], comm(call.h[1]), &st)
                       : MPI_Iprobe(call.i[1], call.i[2], comm(call.h[1]), &found, &st);
    reply.i[0] = found;
    if (found) fill_status(st, reply);
    return rc;
  }
  if (call.op == Op::recv) {
    void* data = memory_.writable(call.buf[0], scratch_[0]);
    if (data == nullptr && call.buf[0].bytes != 0) return MPI_ERR_BUFFER;
    int rc = MPI_Recv(data, call.i[0], type(call.h[0]), call.i[1], call.i[2], comm(call.h[1]), &st);
    fill_status(st, reply);
    reply.written = std::min<std::uint64_t>(span_of(type(call.h[0]), reply.status.bytes), call.buf[0].bytes);
    if (!memory_.write_back(call.buf[0], data, reply.written)) {
      return MPI_ERR_BUFFER;
    }
    return rc;
  }
  // sendrecv
  void* out = memory_.read(call.buf[0], scratch_[0]);
  void* in = memory_.writable(call.buf[1], scratch_[1]);
  if ((out == nullptr && call.buf[0].bytes != 0) || (in == nullptr && call.buf[1].bytes != 0)) {
    return MPI_ERR_BUFFER;
  }
  int rc = MPI_Sendrecv(out, call.i[0], type(call.h[0]), call.i[1], call.i[2], in, call.i[3],
                        type(call.h[2]), call.i[4], call.i[5], comm(call.h[1]), &st);
  fill_status(st, reply);
  reply.written = std::min<std::uint64_t>(span_of(type(call.h[2]), reply.status.bytes), call.buf[1].bytes);
  if (!memory_.write_back(call.buf[1], in, reply.written)) {
    return MPI_ERR_BUFFER;
  }
  return rc;
}

int Server::complete(std::uint32_t id, const MPI_Status& st, const BufRef& into, Reply& reply) {
  PendingRequest& r = requests_[id];
  if (r.receive) {
    fill_status(st, reply);
    // Copy only what arrived (MPI leaves the rest of the receive buffer untouched).
    std::size_t n = std::min({r.buffer.size(), static_cast<std::size_t>(into.bytes),
                              span_of(r.type, reply.status.bytes)});
    reply.written = n;
    if (n != 0 && !memory_.deliver(into, r.buffer.data(), n)) return MPI_ERR_BUFFER;
  }
  r.real = MPI_REQUEST_NULL;
  r.buffer = {};
  return MPI_SUCCESS;
}

int Server::requests(const Call& call, Reply& reply) {
  if (call.op == Op::isend || call.op == Op::irecv) {
    PendingRequest r;
    r.receive = call.op == Op::irecv;
    r.type = type(call.h[0]);
    r.buffer.resize(call.buf[0].bytes);
    if (!r.receive && call.buf[0].bytes != 0) {
      void* data = memory_.read(call.buf[0], scratch_[0]);
      if (data == nullptr) return MPI_ERR_BUFFER;
      std::memcpy(r.buffer.data(), data, call.buf[0].bytes);
    }
    int rc = r.receive ? MPI_Irecv(r.buffer.data(), call.i[0], type(call.h[0]), call.i[1],
                                   call.i[2], comm(call.h[1]), &r.real)
                       : MPI_Isend(r.buffer.data(), call.i[0], type(call.h[0]), call.i[1],
                                   call.i[2], comm(call.h[1]), &r.real);
    if (rc != MPI_SUCCESS) return rc;
    reply.h[0] = add_request(std::move(r));
    return MPI_SUCCESS;
  }
  std::uint32_t id = call.h[0];
  if (id >= requests_.size() || requests_[id].real == MPI_REQUEST_NULL) return MPI_ERR_REQUEST;
  MPI_Status st{};
  if (call.op == Op::wait) {
    int rc = MPI_Wait(&requests_[id].real, &st);
    if (rc != MPI_SUCCESS) return rc;
    return complete(id, st, call.buf[0], reply);
  }
  int flag = 0;
  int rc = MPI_Test(&requests_[id].real, &flag, &st);
  if (rc != MPI_SUCCESS) return rc;
  reply.i[0] = flag;
  return flag ? complete(id, st, call.buf[0], reply) : MPI_SUCCESS;
}

int Server::collective(const Call& call, Reply&) {
  MPI_Comm c = comm(call.h[1]);
  switch (call.op) {
    case Op::barrier:
      return MPI_Barrier(c);
    case Op::bcast: {
      void* data = memory_.read(call.buf[0], scratch_[0]);
      if (data == nullptr && call.buf[0].bytes != 0) return MPI_ERR_BUFFER;
      int rc = MPI_Bcast(data, call.i[0], type(call.h[0]), call.i[1], c);
      if (!memory_.write_back(call.buf[0], data, call.buf[0].bytes)) return MPI_ERR_BUFFER;
      return rc;
    }
    case Op::reduce:
    case Op::allreduce: {
      bool in_place = call.buf[0].where == Where::none;
      bool has_out = call.buf[1].where != Where::none;
      void* in = in_place ? MPI_IN_PLACE : memory_.read(call.buf[0], scratch_[0]);
      // In place, the output buffer also carries the input.
      void* out = !has_out ? nullptr
                  : in_place ? memory_.read(call.buf[1], scratch_[1])
                             : memory_.writable(call.buf[1], scratch_[1]);
      if ((in == nullptr && call.buf[0].bytes != 0) || (has_out && out == nullptr && call.buf[1].bytes != 0)) {
        return MPI_ERR_BUFFER;
      }
      int rc = call.op == Op::allreduce
                   ? MPI_Allreduce(in, out, call.i[0], type(call.h[0]), op(call.h[2]), c)
                   : MPI_Reduce(in, out, call.i[0], type(call.h[0]), op(call.h[2]), call.i[1], c);
      if (has_out && !memory_.write_back(call.buf[1], out, call.buf[1].bytes)) return MPI_ERR_BUFFER;
      return rc;
    }
    default:
      return gather_like(call);
  }
}

// gather, scatter, allgather, alltoall: see the slot table in channel.hpp.
int Server::gather_like(const Call& call) {
  bool in_place = call.i[6] != 0;
  bool has_send = call.buf[0].where != Where::none;
  bool has_recv = call.buf[1].where != Where::none;
  void* send = has_send ? memory_.read(call.buf[0], scratch_[0]) : in_place ? MPI_IN_PLACE : nullptr;
  void* recv = !has_recv  ? (in_place ? MPI_IN_PLACE : nullptr)
               : in_place ? memory_.read(call.buf[1], scratch_[1])
                          : memory_.writable(call.buf[1], scratch_[1]);
  if ((has_send && send == nullptr) || (has_recv && recv == nullptr)) return MPI_ERR_BUFFER;
  MPI_Comm c = comm(call.h[1]);
  MPI_Datatype st = type(call.h[0]), rt = type(call.h[2]);
  int sc = call.i[0], rc_count = call.i[3], root = call.i[1];
  int rc = MPI_ERR_INTERN;
  switch (call.op) {
    case Op::gather:
      rc = MPI_Gather(send, sc, st, recv, rc_count, rt, root, c);
      break;
    case Op::scatter:
      rc = MPI_Scatter(send, sc, st, recv, rc_count, rt, root, c);
      break;
    case Op::allgather:
      rc = MPI_Allgather(send, sc, st, recv, rc_count, rt, c);
      break;
    case Op::alltoall:
      rc = MPI_Alltoall(send, sc, st, recv, rc_count, rt, c);
      break;
    default:
      break;
  }
  if (has_recv && !memory_.write_back(call.buf[1], recv, call.buf[1].bytes)) return MPI_ERR_BUFFER;
  return rc;
}

int Server::comms(const Call& call, Reply& reply) {
  std::uint32_t id = call.h[1];
  if (id >= comms_.size() || comms_[id] == MPI_COMM_NULL) return MPI_ERR_COMM;
  if (call.op == Op::comm_free) {
    if (id < 3) return MPI_ERR_COMM;
    int rc = MPI_Comm_free(&comms_[id]);
    comms_[id] = MPI_COMM_NULL;
    return rc;
  }
  MPI_Comm created = MPI_COMM_NULL;
  int rc = call.op == Op::comm_dup ? MPI_Comm_dup(comms_[id], &created)
                                   : MPI_Comm_split(comms_[id], call.i[0], call.i[1], &created);
  if (rc != MPI_SUCCESS) return rc;
  describe_new_comm(created, created == MPI_COMM_NULL ? kNone : add_comm(created), reply);
  return MPI_SUCCESS;
}

}  // namespace ferry::mpi::proxy
