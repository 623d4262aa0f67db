// SPDX-License-Identifier: Apache-2.0
// Reductions with user-defined operations (user_ops.hpp), run in the application.
//
// Algorithm: every rank packs its operand (datatype_map.hpp: the data of `count` elements of the
// application's datatype, derived or predefined) and one data-moving collective of the lower half
// on MPI_BYTE brings the operands where they are needed:
//   reduce                gather to the root
//   allreduce/scan/exscan allgather
//   reduce_scatter(_block) alltoall: rank r receives every rank's block r (reduce_scatter pads the
//                         blocks to the largest count, so the collective moves equal sizes)
// Then the rank folds the operands it needs in rank order, right to left with MPI's
// (invec, inoutvec) convention: acc = x[last]; for i = last-1 .. first: f(x[i], acc), so the
// result is x[first] op (... op x[last]) — valid for commutative and non-commutative ops, and the
// same in every run and after a restart. Operands are unpacked into scratch buffers laid out as
// the application's datatype (the function receives that datatype's handle and the count), and
// the result is packed again and unpacked into the output so that gaps of a derived datatype are
// left untouched. One collective is counted (count_collective), like any other collective.
#include "user_ops.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "datatype_map.hpp"
#include "state.hpp"

namespace ferry::mpi {
namespace {

using UserFunction = void(void* invec, void* inoutvec, int* len, MPI_Datatype* datatype);

struct Folder {
  const DatatypeRecord* type;
  const OpRecord* op;
  int count;
  std::size_t operand_bytes;  // packed bytes of `count` elements

  // x[first] op ... op x[last], operands at `operand(i)`; the result lands in `out`.
  template <class Operand>
  void fold(int first, int last, Operand operand, void* out) const {
    auto* f = reinterpret_cast<UserFunction*>(op->user_fn);
    LayoutBuffer acc(type, count);
    LayoutBuffer in(type, count);
    unpack(operand(last), operand_bytes, acc.data(), count, type);
    MPI_Datatype handle = reinterpret_cast<MPI_Datatype>(const_cast<DatatypeRecord*>(type));
    for (int i = last - 1; i >= first; --i) {
      unpack(operand(i), operand_bytes, in.data(), count, type);
      int len = count;
      f(in.data(), acc.data(), &len, &handle);
    }
    std::vector<std::byte> result(operand_bytes);
    pack(acc.data(), count, type, result.data());
    unpack(result.data(), result.size(), out, count, type);
  }
};

std::vector<std::byte> packed(const void* buf, int count, const DatatypeRecord* type) {
  std::vector<std::byte> out(packed_size(type, count));
  pack(buf, count, type, out.data());
  return out;
}

MoveOperands move_for_test = nullptr;

int move_bytes(const char* fn, GatherKind kind, std::vector<std::byte>& send, std::size_t block,
               std::vector<std::byte>* recv, int root, CommRecord* comm) {
  if (block > static_cast<std::size_t>(INT32_MAX)) fatal(fn, "operands over 2 GiB per rank are not supported", 69);
  CollectiveBuffers b;
  b.send = {send.data(), send.size()};
  b.send_count = static_cast<int>(block);
  b.send_type = byte_type()->lh;
  if (recv != nullptr) {
    b.recv = {recv->data(), recv->size()};
    b.recv_count = static_cast<int>(block);
    b.recv_type = byte_type()->lh;
  }
  if (move_for_test != nullptr) return move_for_test(kind, b, root, comm);
  return lower_for(fn).gather_like(kind, b, root, comm->lh);
}

}  // namespace

void set_move_operands_for_test(MoveOperands move) { move_for_test = move; }

bool is_user_op(const OpRecord* op) { return op != nullptr && op->user_fn != nullptr; }

int user_reduce(const char* fn, ReduceKind kind, const void* in, void* out, int count, const int* recv_counts,
                const DatatypeRecord* type, const OpRecord* op, int root, CommRecord* comm) {
  int n = comm->size;
  int me = comm->rank;
  if (count < 0) fatal(fn, "negative count (MPI_ERR_COUNT)");
  count_collective(comm);
  if (kind == ReduceKind::reduce_scatter || kind == ReduceKind::reduce_scatter_block) {
    std::vector<int> counts(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      counts[static_cast<std::size_t>(i)] = kind == ReduceKind::reduce_scatter ? recv_counts[i] : count;
      if (counts[static_cast<std::size_t>(i)] < 0) fatal(fn, "negative count (MPI_ERR_COUNT)");
    }
    int widest = *std::max_element(counts.begin(), counts.end());
    long long total = 0;
    for (int c : counts) total += c;
    std::size_t per = packed_size(type, 1);
    std::size_t block = per * static_cast<std::size_t>(widest);
    // My whole input vector, packed, then cut into padded blocks (block i goes to rank i).
    std::vector<std::byte> whole = packed(in != nullptr ? in : out, static_cast<int>(total), type);
    std::vector<std::byte> send(block * static_cast<std::size_t>(n));
    std::size_t at = 0;
    for (int i = 0; i < n; ++i) {
      std::size_t bytes = per * static_cast<std::size_t>(counts[static_cast<std::size_t>(i)]);
      std::memcpy(send.data() + block * static_cast<std::size_t>(i), whole.data() + at, bytes);
      at += bytes;
    }
    std::vector<std::byte> recv(block * static_cast<std::size_t>(n));
    check(fn, move_bytes(fn, GatherKind::alltoall, send, block, &recv, 0, comm));
    int mine = counts[static_cast<std::size_t>(me)];
    Folder folder{type, op, mine, per * static_cast<std::size_t>(mine)};
    folder.fold(0, n - 1, [&](int i) { return recv.data() + block * static_cast<std::size_t>(i); }, out);
    return MPI_SUCCESS;
  }

  if (kind == ReduceKind::reduce && in == nullptr && me != root) fatal(fn, "MPI_IN_PLACE off the root (MPI_ERR_BUFFER)");
  std::vector<std::byte> mine = packed(in != nullptr ? in : out, count, type);
  std::size_t block = mine.size();
  bool receives = kind != ReduceKind::reduce || me == root;
  std::vector<std::byte> all(receives ? block * static_cast<std::size_t>(n) : 0);
  GatherKind moving = kind == ReduceKind::reduce ? GatherKind::gather : GatherKind::allgather;
  check(fn, move_bytes(fn, moving, mine, block, receives ? &all : nullptr, root, comm));
  if (!receives) return MPI_SUCCESS;
  Folder folder{type, op, count, block};
  auto operand = [&](int i) { return all.data() + block * static_cast<std::size_t>(i); };
  switch (kind) {
    case ReduceKind::reduce:
    case ReduceKind::allreduce:
      folder.fold(0, n - 1, operand, out);
      break;
    case ReduceKind::scan:
      folder.fold(0, me, operand, out);
      break;
    case ReduceKind::exscan:
      if (me > 0) folder.fold(0, me - 1, operand, out);  // rank 0's output is undefined: untouched
      break;
    default:
      break;
  }
  return MPI_SUCCESS;
}

}  // namespace ferry::mpi
