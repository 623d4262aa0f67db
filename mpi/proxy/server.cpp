// SPDX-License-Identifier: Apache-2.0
// Running channel calls against the real library (server.hpp). The argument slots of each call
// are listed in channel.hpp next to channel::Op; this file and upper/proxy_lower_half.cpp are the
// two ends and must agree.
//
// Nonblocking calls: an isend copies the payload into a proxy-owned buffer at once (the
// application may not touch its buffer until completion anyway, and the copy lets the shm data
// area be reused by the next call); an irecv lands in a proxy-owned buffer and wait/test copies
// the received bytes to the destination the upper half names at completion.
// Counting (the drain's termination test): `sent_` when a send to a real rank is posted,
// `received_` when a receive from a real rank completes from the network (a drained message is
// counted when it is drained, not again when delivered).
#include "server.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
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
constexpr std::uint64_t kWorldKey = 1;
constexpr std::uint64_t kSelfKey = 2;

channel::WireStatus wire_status(const MPI_Status& st) {
  channel::WireStatus w{};
  w.source = st.MPI_SOURCE;
  w.tag = st.MPI_TAG;
  w.error = st.MPI_ERROR;
  int bytes = 0;
  MPI_Get_count(&st, MPI_BYTE, &bytes);
  w.bytes = bytes == MPI_UNDEFINED ? 0 : static_cast<std::uint64_t>(bytes);
  return w;
}

void fill_status(const MPI_Status& st, Reply& reply) { reply.status = wire_status(st); }

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

bool is_collective(Op op) {
  switch (op) {
    case Op::barrier:
    case Op::bcast:
    case Op::reduce:
    case Op::allreduce:
    case Op::gather:
    case Op::scatter:
    case Op::allgather:
    case Op::alltoall:
    case Op::gatherv:
    case Op::scatterv:
    case Op::allgatherv:
    case Op::alltoallv:
    case Op::reduce_scatter:
    case Op::reduce_scatter_block:
    case Op::scan:
    case Op::exscan:
    case Op::comm_dup:
    case Op::comm_split:
    case Op::comm_free:
    case Op::finalize:
      return true;
    default:
      return false;
  }
}
}  // namespace

std::uint64_t mix_key(std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (z ^ (z >> 31)) | 4;  // never a predefined key
}

Server::Server(channel::Layout* layout) : layout_(layout), memory_(layout, -1) {
#define FERRY_REAL_TYPE(name, size, extent) types_.push_back((MPI_Datatype)&ompi_mpi_##name);
  FERRY_MPI_DATATYPE_LIST(FERRY_REAL_TYPE)
#undef FERRY_REAL_TYPE
#define FERRY_REAL_OP(name) ops_.push_back((MPI_Op)&ompi_mpi_op_##name);
  FERRY_MPI_OP_LIST(FERRY_REAL_OP)
#undef FERRY_REAL_OP
  comms_.resize(3);
  comms_[0] = CommEntry{MPI_COMM_WORLD, kWorldKey, 0, world_ranks_of(MPI_COMM_WORLD)};
  comms_[1] = CommEntry{MPI_COMM_SELF, kSelfKey, 0, world_ranks_of(MPI_COMM_SELF)};
  make_barrier_comm(comms_[0]);
  make_barrier_comm(comms_[1]);
}

MPI_Comm Server::comm(std::uint32_t id) const { return id < comms_.size() ? comms_[id].real : MPI_COMM_NULL; }
MPI_Datatype Server::type(std::uint32_t id) const {
  return id < types_.size() ? types_[id] : MPI_DATATYPE_NULL;
}
MPI_Op Server::op(std::uint32_t id) const { return id < ops_.size() ? ops_[id] : MPI_OP_NULL; }

std::vector<int> Server::world_ranks_of(MPI_Comm c) const {
  int size = 0;
  MPI_Comm_size(c, &size);
  MPI_Group group, world;
  MPI_Comm_group(c, &group);
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  std::vector<int> ranks(static_cast<std::size_t>(size)), out(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) ranks[static_cast<std::size_t>(r)] = r;
  MPI_Group_translate_ranks(group, size, ranks.data(), world, out.data());
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  return out;
}

bool Server::make_barrier_comm(CommEntry& e) {
  return MPI_Comm_dup(e.real, &e.barriers) == MPI_SUCCESS;
}

std::uint32_t Server::add_comm(MPI_Comm c, std::uint64_t key) {
  CommEntry e{c, key, 0, world_ranks_of(c)};
  make_barrier_comm(e);
  for (std::size_t i = 3; i < comms_.size(); ++i) {
    if (comms_[i].real == MPI_COMM_NULL) {
      comms_[i] = std::move(e);
      return static_cast<std::uint32_t>(i);
    }
  }
  comms_.push_back(std::move(e));
  return static_cast<std::uint32_t>(comms_.size() - 1);
}

std::uint32_t Server::add_request(RequestEntry r) {
  reap_orphans();
  if (r.coll != 0) ++collectives_live_;
  r.live = true;
  r.order = next_order_++;
  for (std::size_t i = 0; i < requests_.size(); ++i) {
    if (!requests_[i].live) {
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
  const CommEntry& e = comms_[id];
  int rank = 0;
  MPI_Comm_rank(c, &rank);
  reply.i[0] = rank;
  reply.i[1] = static_cast<std::int32_t>(e.world_ranks.size());
  if (e.world_ranks.size() * sizeof(int) <= channel::kDataBytes)
    std::memcpy(layout_->data, e.world_ranks.data(), e.world_ranks.size() * sizeof(int));
}

std::deque<Drained>::iterator Server::match_drained(std::uint32_t comm_id, int source, int tag) {
  if (source == MPI_PROC_NULL) return drained_.end();
  return std::find_if(drained_.begin(), drained_.end(), [&](const Drained& d) {
    return d.comm == comm_id && (source == MPI_ANY_SOURCE || source == d.source) &&
           (tag == MPI_ANY_TAG || tag == d.tag);
  });
}

int Server::take_drained(std::deque<Drained>::iterator it, void* out, std::size_t out_bytes, int count,
                         std::uint32_t type_id, Reply& reply) {
  MPI_Datatype t = type(type_id);
  int size = 0;
  MPI_Type_size(t, &size);
  int elements = size > 0 ? static_cast<int>(it->packed.size() / static_cast<std::size_t>(size)) : 0;
  int rc = MPI_SUCCESS;
  if (elements > count) {
    elements = count;
    rc = MPI_ERR_TRUNCATE;
  }
  int position = 0;
  if (elements > 0 && out != nullptr)
    MPI_Unpack(it->packed.data(), static_cast<int>(it->packed.size()), &position, out, elements, t,
               comm(it->comm));
  reply.status.source = it->source;
  reply.status.tag = it->tag;
  reply.status.error = rc;
  reply.status.bytes = it->packed.size();
  reply.written = std::min<std::uint64_t>(span_of(t, it->packed.size()), out_bytes);
  drained_.erase(it);
  return rc;
}

bool Server::start(std::uint32_t seq, const Call& call, Reply& reply) {
  reply = Reply{};
  Active& a = active_;
  a = Active{};
  a.seq = seq;
  a.call = call;
  switch (call.op) {
    case Op::hello:
      reply.rc = hello(reply);
      return true;
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
    case Op::ssend: {
      void* data = memory_.read(call.buf[0], scratch_[0]);
      if (data == nullptr && call.buf[0].bytes != 0) {
        reply.rc = MPI_ERR_BUFFER;
        return true;
      }
      int rc = call.op == Op::send
                   ? MPI_Isend(data, call.i[0], type(call.h[0]), call.i[1], call.i[2], comm(call.h[1]), &a.req[0])
                   : MPI_Issend(data, call.i[0], type(call.h[0]), call.i[1], call.i[2], comm(call.h[1]), &a.req[0]);
      if (rc != MPI_SUCCESS) {
        reply.rc = rc;
        return true;
      }
      if (call.i[1] != MPI_PROC_NULL) ++sent_;
      a.stage = Active::Stage::send;
      break;
    }
    case Op::recv: {
      void* data = memory_.writable(call.buf[0], scratch_[0]);
      if (data == nullptr && call.buf[0].bytes != 0) {
        reply.rc = MPI_ERR_BUFFER;
        return true;
      }
      auto it = match_drained(call.h[1], call.i[1], call.i[2]);
      if (it != drained_.end()) {
        reply.rc = take_drained(it, data, call.buf[0].bytes, call.i[0], call.h[0], reply);
        if (!memory_.write_back(call.buf[0], data, reply.written)) reply.rc = MPI_ERR_BUFFER;
        return true;
      }
      int rc = MPI_Irecv(data, call.i[0], type(call.h[0]), call.i[1], call.i[2], comm(call.h[1]), &a.req[0]);
      if (rc != MPI_SUCCESS) {
        reply.rc = rc;
        return true;
      }
      a.landing = data;
      a.stage = Active::Stage::recv;
      break;
    }
    case Op::sendrecv: {
      void* out = memory_.read(call.buf[0], scratch_[0]);
      void* in = memory_.writable(call.buf[1], scratch_[1]);
      if ((out == nullptr && call.buf[0].bytes != 0) || (in == nullptr && call.buf[1].bytes != 0)) {
        reply.rc = MPI_ERR_BUFFER;
        return true;
      }
      a.landing = in;
      if (seq != 0 && seq == skip_send_seq_) {
        a.send_done = true;  // sent before the checkpoint this restart comes from
      } else {
        int rc = MPI_Isend(out, call.i[0], type(call.h[0]), call.i[1], call.i[2], comm(call.h[1]), &a.req[0]);
        if (rc != MPI_SUCCESS) {
          reply.rc = rc;
          return true;
        }
        if (call.i[1] != MPI_PROC_NULL) ++sent_;
      }
      skip_send_seq_ = 0;
      auto it = match_drained(call.h[1], call.i[4], call.i[5]);
      if (it != drained_.end()) {
        a.prepared.rc = take_drained(it, in, call.buf[1].bytes, call.i[3], call.h[2], a.prepared);
        a.recv_done = true;
        if (!memory_.write_back(call.buf[1], in, a.prepared.written)) a.prepared.rc = MPI_ERR_BUFFER;
      } else {
        int rc = MPI_Irecv(in, call.i[3], type(call.h[2]), call.i[4], call.i[5], comm(call.h[1]), &a.req[1]);
        if (rc != MPI_SUCCESS) {
          reply.rc = rc;
          return true;
        }
      }
      a.stage = Active::Stage::sendrecv;
      break;
    }
    case Op::probe: {
      auto it = match_drained(call.h[1], call.i[1], call.i[2]);
      if (it != drained_.end()) {
        reply.i[0] = 1;
        reply.status.source = it->source;
        reply.status.tag = it->tag;
        reply.status.bytes = it->packed.size();
        return true;
      }
      if (!call.i[0]) {
        int found = 0;
        MPI_Status st{};
        reply.rc = MPI_Iprobe(call.i[1], call.i[2], comm(call.h[1]), &found, &st);
        reply.i[0] = found;
        if (found) fill_status(st, reply);
        return true;
      }
      a.stage = Active::Stage::probe;
      break;
    }
    case Op::isend:
    case Op::issend:
    case Op::irecv: {
      RequestEntry r;
      r.receive = call.op == Op::irecv;
      r.type = call.h[0];
      r.comm = call.h[1];
      r.count = call.i[0];
      r.peer = call.i[1];
      r.tag = call.i[2];
      r.buffer.resize(call.buf[0].bytes);
      if (!r.receive && call.buf[0].bytes != 0) {
        void* data = memory_.read(call.buf[0], scratch_[0]);
        if (data == nullptr) {
          reply.rc = MPI_ERR_BUFFER;
          return true;
        }
        std::memcpy(r.buffer.data(), data, call.buf[0].bytes);
      }
      auto it = r.receive ? match_drained(r.comm, r.peer, r.tag) : drained_.end();
      if (it != drained_.end()) {
        Reply got{};
        take_drained(it, r.buffer.data(), r.buffer.size(), r.count, r.type, got);
        r.done = true;
        r.status = got.status;
      } else {
        int rc = r.receive            ? MPI_Irecv(r.buffer.data(), r.count, type(r.type), r.peer, r.tag, comm(r.comm), &r.real)
                 : call.op == Op::issend ? MPI_Issend(r.buffer.data(), r.count, type(r.type), r.peer, r.tag, comm(r.comm), &r.real)
                                         : MPI_Isend(r.buffer.data(), r.count, type(r.type), r.peer, r.tag, comm(r.comm), &r.real);
        if (rc != MPI_SUCCESS) {
          reply.rc = rc;
          return true;
        }
        if (!r.receive && r.peer != MPI_PROC_NULL) ++sent_;
      }
      reply.h[0] = add_request(std::move(r));
      return true;
    }
    case Op::wait:
    case Op::test: {
      std::uint32_t id = call.h[0];
      if (id >= requests_.size() || !requests_[id].live) {
        reply.rc = MPI_ERR_REQUEST;
        return true;
      }
      RequestEntry& r = requests_[id];
      if (advance(r)) {
        reply.i[0] = 1;
        reply.rc = deliver_request(id, call.buf[0], reply);
        return true;
      }
      if (call.op == Op::test) return true;  // i[0] = 0: not done
      a.stage = Active::Stage::wait;
      break;
    }
    case Op::wait_some: {
      const void* ids = memory_.read(call.buf[0], scratch_[0]);
      if (ids == nullptr && call.buf[0].bytes != 0) {
        reply.rc = MPI_ERR_BUFFER;
        return true;
      }
      a.ids.resize(static_cast<std::size_t>(call.i[0]));
      if (!a.ids.empty()) std::memcpy(a.ids.data(), ids, a.ids.size() * sizeof(std::uint32_t));
      a.mode = call.i[1];
      if (scan_ids(reply) || a.mode != 0 || reply.rc != MPI_SUCCESS) return true;
      a.stage = Active::Stage::wait_some;
      break;
    }
    case Op::cancel:
    case Op::request_free: {
      std::uint32_t id = call.h[0];
      if (id >= requests_.size() || !requests_[id].live) {
        reply.rc = MPI_ERR_REQUEST;
        return true;
      }
      RequestEntry& r = requests_[id];
      if (call.op == Op::request_free) {
        r.orphan = true;
        if (advance(r)) release(id);
        return true;
      }
      if (!r.receive) {
        reply.rc = MPI_ERR_REQUEST;
        return true;
      }
      if (!r.done) {
        MPI_Cancel(&r.real);
        MPI_Status st{};
        MPI_Wait(&r.real, &st);
        int cancelled = 0;
        MPI_Test_cancelled(&st, &cancelled);
        if (cancelled) {
          r.done = true;
          r.real = MPI_REQUEST_NULL;
          r.status = channel::WireStatus{};
          r.status.cancelled = 1;
        } else {
          note_request_done(r, st);
        }
      }
      return true;
    }
    case Op::ibarrier:
    case Op::ibcast:
    case Op::iallreduce: {
      std::uint32_t id = call.h[1];
      if (id >= comms_.size() || comms_[id].real == MPI_COMM_NULL) {
        reply.rc = MPI_ERR_COMM;
        return true;
      }
      RequestEntry r;
      r.coll = static_cast<std::uint32_t>(call.op);
      r.comm = id;
      r.type = call.h[0];
      r.count = call.i[0];
      r.root = call.i[1];
      r.op = call.h[2];
      if (call.op != Op::ibarrier) {
        void* data = memory_.read(call.buf[0], scratch_[0]);
        if (data == nullptr && call.buf[0].bytes != 0) {
          reply.rc = MPI_ERR_BUFFER;
          return true;
        }
        std::vector<char>& to = call.op == Op::ibcast ? r.buffer : r.input;
        to.assign(static_cast<char*>(data), static_cast<char*>(data) + call.buf[0].bytes);
        if (call.op == Op::iallreduce) r.buffer.resize(call.buf[1].bytes);
      }
      r.seq = ++comms_[id].entered;
      reply.rc = MPI_Ibarrier(comms_[id].barriers, &r.real);
      if (reply.rc != MPI_SUCCESS) return true;
      reply.h[0] = add_request(std::move(r));
      return true;
    }
    default:
      if (!is_collective(call.op)) {
        reply.rc = MPI_ERR_INTERN;
        return true;
      }
      if (!start_collective(call)) {
        reply.rc = MPI_ERR_COMM;
        return true;
      }
      a.stage = Active::Stage::barrier;
      break;
  }
  a.busy = true;
  return false;
}

// FERRY_TEST_STOP_IN_COLLECTIVE="R:N" or "R:PATH" (tests): the proxy of world rank R stops
// itself (SIGSTOP) once, when the barrier of its N-th collective (or of its first collective
// after the file PATH appeared) has completed and before the real collective starts: every other
// member is then inside that collective, waiting for R.
void Server::test_stop_in_collective() {
  static long count = 0;
  static int want_rank = -2;
  static long want_n = 0;
  static char path[512] = {};
  if (want_rank == -2) {
    want_rank = -1;
    if (const char* spec = std::getenv("FERRY_TEST_STOP_IN_COLLECTIVE")) {
      if (std::sscanf(spec, "%d:%ld", &want_rank, &want_n) != 2 && std::sscanf(spec, "%d:%511s", &want_rank, path) != 2)
        want_rank = -1;
      int rank = 0;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      if (rank != want_rank) want_rank = -1;
    }
  }
  if (want_rank < 0) return;
  ++count;
  if (path[0] != '\0' ? access(path, F_OK) != 0 : count != want_n) return;
  std::fprintf(stderr, "ferry-mpi-proxy: rank %d stops itself in its collective %ld (FERRY_TEST_STOP_IN_COLLECTIVE)\n",
               want_rank, count);
  want_rank = -1;  // once
  raise(SIGSTOP);
}

// Every collective begins with a barrier on its communicator (see server.hpp).
bool Server::start_collective(const Call& call) {
  std::uint32_t id = call.op == Op::finalize ? 0 : call.h[1];
  if (id >= comms_.size() || comms_[id].real == MPI_COMM_NULL) return false;
  if (call.op == Op::comm_free && id < 3) return false;
  ++comms_[id].entered;
  if (call.op == Op::finalize) finishing_ = true;
  return MPI_Ibarrier(comms_[id].barriers, &active_.req[0]) == MPI_SUCCESS;
}

bool Server::progress(Reply& reply) {
  Active& a = active_;
  if (collectives_live_ > 0) advance_collectives();
  if (!a.busy) return false;
  const Call& call = a.call;
  int flag = 0;
  switch (a.stage) {
    case Active::Stage::barrier:
      MPI_Test(&a.req[0], &flag, MPI_STATUS_IGNORE);
      if (!flag) return false;
      test_stop_in_collective();
      reply = Reply{};
      reply.rc = run_collective(call, reply);
      if (reply.rc == kPending) {
        a.stage = Active::Stage::collective;
        return false;
      }
      break;
    case Active::Stage::collective: {
      int rc = MPI_Test(&a.req[1], &flag, MPI_STATUS_IGNORE);
      if (!flag && rc == MPI_SUCCESS) return false;
      reply = Reply{};
      reply.rc = rc != MPI_SUCCESS ? rc : a.finish ? a.finish() : MPI_SUCCESS;
      a.finish = nullptr;
      a.req[1] = MPI_REQUEST_NULL;
      break;
    }
    case Active::Stage::send:
      MPI_Test(&a.req[0], &flag, MPI_STATUS_IGNORE);
      if (!flag) return false;
      reply = Reply{};
      break;
    case Active::Stage::recv:
      MPI_Test(&a.req[0], &flag, &a.st);
      if (!flag) return false;
      reply = Reply{};
      if (!finish_recv(reply, call.buf[0], call.h[0])) reply.rc = MPI_ERR_BUFFER;
      break;
    case Active::Stage::sendrecv:
      if (!a.send_done) {
        MPI_Test(&a.req[0], &flag, MPI_STATUS_IGNORE);
        a.send_done = flag != 0;
      }
      if (!a.recv_done) {
        flag = 0;
        MPI_Test(&a.req[1], &flag, &a.st);
        if (flag) {
          a.recv_done = true;
          if (!finish_recv(a.prepared, call.buf[1], call.h[2])) a.prepared.rc = MPI_ERR_BUFFER;
        }
      }
      if (!a.send_done || !a.recv_done) return false;
      reply = a.prepared;
      break;
    case Active::Stage::probe: {
      auto it = match_drained(call.h[1], call.i[1], call.i[2]);
      reply = Reply{};
      if (it != drained_.end()) {
        reply.i[0] = 1;
        reply.status.source = it->source;
        reply.status.tag = it->tag;
        reply.status.bytes = it->packed.size();
        break;
      }
      MPI_Status st{};
      reply.rc = MPI_Iprobe(call.i[1], call.i[2], comm(call.h[1]), &flag, &st);
      if (!flag && reply.rc == MPI_SUCCESS) return false;
      reply.i[0] = 1;
      fill_status(st, reply);
      break;
    }
    case Active::Stage::wait: {
      RequestEntry& r = requests_[call.h[0]];
      if (!advance(r)) return false;
      reply = Reply{};
      reply.i[0] = 1;
      reply.rc = deliver_request(call.h[0], call.buf[0], reply);
      break;
    }
    case Active::Stage::wait_some:
      reply = Reply{};
      if (!scan_ids(reply) && reply.rc == MPI_SUCCESS) return false;
      break;
  }
  a.busy = false;
  return true;
}

bool Server::finish_recv(Reply& reply, const BufRef& ref, std::uint32_t type_id) {
  Active& a = active_;
  fill_status(a.st, reply);
  if (a.st.MPI_SOURCE != MPI_PROC_NULL) ++received_;
  reply.written = std::min<std::uint64_t>(span_of(type(type_id), reply.status.bytes), ref.bytes);
  return memory_.write_back(ref, a.landing, reply.written);
}

void Server::note_request_done(RequestEntry& r, const MPI_Status& st) {
  r.done = true;
  r.real = MPI_REQUEST_NULL;
  if (r.receive) {
    r.status = wire_status(st);
    if (st.MPI_SOURCE != MPI_PROC_NULL) ++received_;
  } else {
    r.status = channel::WireStatus{};
    r.buffer = {};
  }
}

// Hands a completed request's result to the application and frees its id.
int Server::deliver_request(std::uint32_t id, const BufRef& into, Reply& reply) {
  RequestEntry& r = requests_[id];
  int rc = MPI_SUCCESS;
  if (r.receive) {
    reply.status = r.status;
    // Copy only what arrived (MPI leaves the rest of the receive buffer untouched).
    std::size_t n = r.status.cancelled ? 0
                                       : std::min({r.buffer.size(), static_cast<std::size_t>(into.bytes),
                                                   span_of(type(r.type), r.status.bytes)});
    reply.written = n;
    if (n != 0 && !memory_.deliver(into, r.buffer.data(), n)) rc = MPI_ERR_BUFFER;
  } else if (r.coll != 0) {
    std::size_t n = std::min(r.buffer.size(), static_cast<std::size_t>(into.bytes));
    reply.written = n;
    if (n != 0 && !memory_.deliver(into, r.buffer.data(), n)) rc = MPI_ERR_BUFFER;
  }
  release(id);
  return rc;
}

void Server::release(std::uint32_t id) {
  if (requests_[id].coll != 0) --collectives_live_;
  requests_[id] = RequestEntry{};
}

void Server::reap_orphans() {
  for (std::uint32_t id = 0; id < requests_.size(); ++id)
    if (requests_[id].live && requests_[id].orphan && advance(requests_[id])) release(id);
}

bool Server::advance(RequestEntry& r) {
  if (!r.live || r.done) return r.done;
  int flag = 0;
  MPI_Status st{};
  if (r.coll == 0) {
    MPI_Test(&r.real, &flag, &st);
    if (flag) note_request_done(r, st);
    return r.done;
  }
  if (r.stage == 0) {
    MPI_Test(&r.real, &flag, MPI_STATUS_IGNORE);
    if (!flag) return false;
    flush_collectives(r.comm, r.seq);
    begin_real(r);
    if (r.done) return true;
    flag = 0;
  }
  MPI_Test(&r.real, &flag, MPI_STATUS_IGNORE);
  if (flag) {
    r.done = true;
    r.real = MPI_REQUEST_NULL;
    r.input = {};
  }
  return r.done;
}

void Server::advance_collectives() {
  for (auto& r : requests_)
    if (r.live && r.coll != 0 && !r.done) advance(r);
}

void Server::flush_collectives(std::uint32_t comm_id, std::uint64_t before) {
  for (;;) {
    RequestEntry* first = nullptr;
    for (auto& r : requests_)
      if (r.live && r.coll != 0 && !r.done && r.stage == 0 && r.comm == comm_id && r.seq < before &&
          (first == nullptr || r.seq < first->seq))
        first = &r;
    if (first == nullptr) return;
    MPI_Wait(&first->real, MPI_STATUS_IGNORE);  // every member entered it: it completes
    begin_real(*first);
  }
}

void Server::begin_real(RequestEntry& r) {
  r.stage = 1;
  r.real = MPI_REQUEST_NULL;
  MPI_Comm c = comm(r.comm);
  switch (static_cast<Op>(r.coll)) {
    case Op::ibcast:
      MPI_Ibcast(r.buffer.data(), r.count, type(r.type), r.root, c, &r.real);
      break;
    case Op::iallreduce:
      MPI_Iallreduce(r.input.data(), r.buffer.data(), r.count, type(r.type), op(r.op), c, &r.real);
      break;
    default:  // ibarrier: its barrier was all of it
      r.done = true;
      break;
  }
}

// wait_some: reply i[0] = first complete index (-1 none), i[1] = how many are complete.
bool Server::scan_ids(Reply& reply) {
  int first = -1, complete = 0;
  for (std::size_t i = 0; i < active_.ids.size(); ++i) {
    std::uint32_t id = active_.ids[i];
    if (id == kNone) continue;
    if (id >= requests_.size() || !requests_[id].live) {
      reply.rc = MPI_ERR_REQUEST;
      return false;
    }
    if (advance(requests_[id])) {
      ++complete;
      if (first < 0) first = static_cast<int>(i);
    }
  }
  reply.i[0] = first;
  reply.i[1] = complete;
  return first >= 0;
}

void Server::progress_requests() {
  for (auto& r : requests_)
    if (r.live && !r.done) advance(r);
  reap_orphans();
}

void Server::drain_network() {
  for (std::uint32_t id = 0; id < comms_.size(); ++id) {
    MPI_Comm c = comms_[id].real;
    if (c == MPI_COMM_NULL) continue;
    for (;;) {
      int flag = 0;
      MPI_Status st{};
      MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c, &flag, &st);
      if (!flag) break;
      int bytes = 0;
      MPI_Get_count(&st, MPI_PACKED, &bytes);
      Drained d;
      d.comm = id;
      d.source = st.MPI_SOURCE;
      d.tag = st.MPI_TAG;
      d.packed.resize(static_cast<std::size_t>(bytes));
      MPI_Recv(d.packed.data(), bytes, MPI_PACKED, st.MPI_SOURCE, st.MPI_TAG, c, MPI_STATUS_IGNORE);
      ++received_;
      drained_.push_back(std::move(d));
    }
  }
}

std::vector<EnteredCount> Server::entered_counts() const {
  std::vector<EnteredCount> out = freed_;
  for (const auto& c : comms_)
    if (c.real != MPI_COMM_NULL && c.key != kSelfKey) out.emplace_back(c.key, c.entered);
  return out;
}

const CommEntry* Server::comm_by_key(std::uint64_t key) const {
  for (const auto& c : comms_)
    if (c.real != MPI_COMM_NULL && c.key == key) return &c;
  return nullptr;
}

std::vector<std::uint64_t> Server::live_keys() const {
  std::vector<std::uint64_t> keys;
  for (const auto& c : comms_)
    if (c.real != MPI_COMM_NULL) keys.push_back(c.key);
  return keys;
}

bool Server::settled(const std::vector<EnteredCount>& targets) const {
  for (const auto& r : requests_) {
    if (!r.live || r.done || r.receive) continue;
    if (r.coll == 0) return false;  // a send still on the network
    // A nonblocking collective every member entered must complete; one that some member has
    // not entered cannot have started anywhere and stays pending.
    for (const auto& [key, target] : targets)
      if (key == comms_[r.comm].key && r.seq <= target) return false;
  }
  if (!active_.busy) return true;
  switch (active_.stage) {
    case Active::Stage::send:
    case Active::Stage::collective:  // every member entered it: it must finish
      return false;
    case Active::Stage::sendrecv:
      return active_.send_done;
    case Active::Stage::barrier: {
      std::uint32_t id = active_.call.op == Op::finalize ? 0 : active_.call.h[1];
      const CommEntry& c = comms_[id];
      if (c.key == kSelfKey) return false;  // completes on its own
      for (const auto& [key, target] : targets)
        if (key == c.key) return c.entered > target;  // every member entered: it must finish
      return true;
    }
    default:
      return true;
  }
}

int Server::begin_collective(int rc, std::function<int()> finish) {
  if (rc != MPI_SUCCESS) {
    active_.req[1] = MPI_REQUEST_NULL;
    return rc;
  }
  active_.finish = std::move(finish);
  return kPending;
}

// Starts the collective whose barrier completed: every member is committed to it. Returns its
// rc, or kPending when its real operation is in flight (progress() completes it).
int Server::run_collective(const Call& call, Reply& reply) {
  MPI_Comm c = comm(call.h[1]);
  // Earlier nonblocking collectives of this communicator start their real operation first.
  if (collectives_live_ > 0) flush_collectives(call.op == Op::finalize ? 0 : call.h[1], UINT64_MAX);
  switch (call.op) {
    case Op::finalize: {
      finalized_ = true;
      return MPI_SUCCESS;  // main.cpp calls MPI_Finalize once the reply is posted
    }
    case Op::barrier:
      return MPI_SUCCESS;  // the barrier itself was the collective
    case Op::bcast: {
      void* data = memory_.read(call.buf[0], scratch_[0]);
      if (data == nullptr && call.buf[0].bytes != 0) return MPI_ERR_BUFFER;
      BufRef ref = call.buf[0];
      return begin_collective(MPI_Ibcast(data, call.i[0], type(call.h[0]), call.i[1], c, &active_.req[1]),
                              [this, ref, data] { return memory_.write_back(ref, data, ref.bytes) ? MPI_SUCCESS : MPI_ERR_BUFFER; });
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
                   ? MPI_Iallreduce(in, out, call.i[0], type(call.h[0]), op(call.h[2]), c, &active_.req[1])
                   : MPI_Ireduce(in, out, call.i[0], type(call.h[0]), op(call.h[2]), call.i[1], c, &active_.req[1]);
      BufRef ref = call.buf[1];
      return begin_collective(rc, [this, ref, out, has_out] {
        return !has_out || memory_.write_back(ref, out, ref.bytes) ? MPI_SUCCESS : MPI_ERR_BUFFER;
      });
    }
    case Op::comm_dup:
    case Op::comm_split:
    case Op::comm_free:
      return comms(call, reply);
    case Op::gatherv:
    case Op::scatterv:
    case Op::allgatherv:
    case Op::alltoallv:
      return v_collective(call);
    case Op::reduce_scatter:
    case Op::reduce_scatter_block:
    case Op::scan:
    case Op::exscan:
      return reduce_more(call);
    default:
      return gather_like(call);
  }
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
      rc = MPI_Igather(send, sc, st, recv, rc_count, rt, root, c, &active_.req[1]);
      break;
    case Op::scatter:
      rc = MPI_Iscatter(send, sc, st, recv, rc_count, rt, root, c, &active_.req[1]);
      break;
    case Op::allgather:
      rc = MPI_Iallgather(send, sc, st, recv, rc_count, rt, c, &active_.req[1]);
      break;
    case Op::alltoall:
      rc = MPI_Ialltoall(send, sc, st, recv, rc_count, rt, c, &active_.req[1]);
      break;
    default:
      break;
  }
  BufRef ref = call.buf[1];
  return begin_collective(rc, [this, ref, recv, has_recv] {
    return !has_recv || memory_.write_back(ref, recv, ref.bytes) ? MPI_SUCCESS : MPI_ERR_BUFFER;
  });
}

// gatherv, scatterv, allgatherv, alltoallv: see the slot table in channel.hpp.
int Server::v_collective(const Call& call) {
  bool in_place = call.i[6] != 0;
  bool has_send = call.buf[0].where != Where::none;
  bool has_recv = call.buf[1].where != Where::none;
  void* send = has_send ? memory_.read(call.buf[0], scratch_[0]) : in_place ? MPI_IN_PLACE : nullptr;
  // The receive buffer is in-out: the gaps between displaced blocks keep the application's data.
  void* recv = !has_recv ? (in_place ? MPI_IN_PLACE : nullptr) : memory_.read(call.buf[1], scratch_[1]);
  auto* counts = static_cast<int*>(memory_.read(call.buf[2], scratch_[2]));
  int n = call.i[7];
  if ((has_send && send == nullptr) || (has_recv && recv == nullptr) || counts == nullptr ||
      call.buf[2].bytes < 4 * sizeof(int) * static_cast<std::size_t>(n))
    return MPI_ERR_BUFFER;
  const int *sc = counts, *sd = counts + n, *rcounts = counts + 2 * n, *rd = counts + 3 * n;
  MPI_Comm c = comm(call.h[1]);
  MPI_Datatype st = type(call.h[0]), rt = type(call.h[2]);
  int root = call.i[1];
  int rc = MPI_ERR_INTERN;
  switch (call.op) {
    case Op::gatherv:
      rc = MPI_Igatherv(send, call.i[0], st, recv, rcounts, rd, rt, root, c, &active_.req[1]);
      break;
    case Op::scatterv:
      rc = MPI_Iscatterv(send, sc, sd, st, recv, call.i[3], rt, root, c, &active_.req[1]);
      break;
    case Op::allgatherv:
      rc = MPI_Iallgatherv(send, call.i[0], st, recv, rcounts, rd, rt, c, &active_.req[1]);
      break;
    case Op::alltoallv:
      rc = MPI_Ialltoallv(send, sc, sd, st, recv, rcounts, rd, rt, c, &active_.req[1]);
      break;
    default:
      break;
  }
  BufRef ref = call.buf[1];
  return begin_collective(rc, [this, ref, recv, has_recv] {
    return !has_recv || memory_.write_back(ref, recv, ref.bytes) ? MPI_SUCCESS : MPI_ERR_BUFFER;
  });
}

// reduce_scatter, reduce_scatter_block, scan, exscan: the output buffer is always in-out.
int Server::reduce_more(const Call& call) {
  bool in_place = call.buf[0].where == Where::none;
  void* in = in_place ? MPI_IN_PLACE : memory_.read(call.buf[0], scratch_[0]);
  void* out = memory_.read(call.buf[1], scratch_[1]);
  if ((in == nullptr && call.buf[0].bytes != 0) || (out == nullptr && call.buf[1].bytes != 0)) return MPI_ERR_BUFFER;
  MPI_Comm c = comm(call.h[1]);
  MPI_Datatype t = type(call.h[0]);
  MPI_Op o = op(call.h[2]);
  int rc = MPI_ERR_INTERN;
  switch (call.op) {
    case Op::reduce_scatter: {
      auto* counts = static_cast<int*>(memory_.read(call.buf[2], scratch_[2]));
      if (counts == nullptr || call.buf[2].bytes < sizeof(int) * static_cast<std::size_t>(call.i[7]))
        return MPI_ERR_BUFFER;
      rc = MPI_Ireduce_scatter(in, out, counts, t, o, c, &active_.req[1]);
      break;
    }
    case Op::reduce_scatter_block:
      rc = MPI_Ireduce_scatter_block(in, out, call.i[0], t, o, c, &active_.req[1]);
      break;
    case Op::scan:
      rc = MPI_Iscan(in, out, call.i[0], t, o, c, &active_.req[1]);
      break;
    case Op::exscan:
      rc = MPI_Iexscan(in, out, call.i[0], t, o, c, &active_.req[1]);
      break;
    default:
      break;
  }
  BufRef ref = call.buf[1];
  return begin_collective(rc, [this, ref, out] {
    return memory_.write_back(ref, out, ref.bytes) ? MPI_SUCCESS : MPI_ERR_BUFFER;
  });
}

int Server::comms(const Call& call, Reply& reply) {
  std::uint32_t id = call.h[1];
  if (id >= comms_.size() || comms_[id].real == MPI_COMM_NULL) return MPI_ERR_COMM;
  CommEntry& parent = comms_[id];
  if (call.op == Op::comm_free) {
    if (id < 3) return MPI_ERR_COMM;
    freed_.emplace_back(parent.key, parent.entered);
    MPI_Comm_free(&parent.barriers);
    int rc = MPI_Comm_free(&parent.real);
    parent = CommEntry{};
    return rc;
  }
  MPI_Comm created = MPI_COMM_NULL;
  int rc = call.op == Op::comm_dup ? MPI_Comm_dup(parent.real, &created)
                                   : MPI_Comm_split(parent.real, call.i[0], call.i[1], &created);
  if (rc != MPI_SUCCESS) return rc;
  // The same on every member: parent, the collective's number on it, and the color.
  std::uint64_t key = mix_key(mix_key(parent.key, parent.entered),
                              call.op == Op::comm_dup ? 0xd0d0'd0d0ull : static_cast<std::uint32_t>(call.i[0]));
  describe_new_comm(created, created == MPI_COMM_NULL ? kNone : add_comm(created, key), reply);
  return MPI_SUCCESS;
}

}  // namespace ferry::mpi::proxy
