// SPDX-License-Identifier: Apache-2.0
// The datatype engine and user-op reductions without a lower half: type bounds against the
// figures Open MPI 4.1 gives for the same constructions (measured with the real library), pack /
// unpack round trips through send_buffer / recv_buffer (gaps untouched, MPI_BOTTOM, pair types),
// and user_reduce for every kind with a simulated communicator whose other ranks' operands the
// test supplies (rank order checked with a non-commutative op).
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <numeric>

#include "mpi/upper/buffers.hpp"
#include "mpi/upper/datatype_map.hpp"
#include "mpi/upper/state.hpp"
#include "mpi/upper/user_ops.hpp"

extern "C" {
int PMPI_Type_create_subarray(int, const int[], const int[], const int[], int, MPI_Datatype, MPI_Datatype*);
int PMPI_Type_vector(int, int, int, MPI_Datatype, MPI_Datatype*);
int PMPI_Type_create_struct(int, const int[], const MPI_Aint[], const MPI_Datatype[], MPI_Datatype*);
int PMPI_Type_create_resized(MPI_Datatype, MPI_Aint, MPI_Aint, MPI_Datatype*);
int PMPI_Type_contiguous(int, MPI_Datatype, MPI_Datatype*);
int PMPI_Type_create_hindexed(int, const int[], const MPI_Aint[], MPI_Datatype, MPI_Datatype*);
int PMPI_Type_free(MPI_Datatype*);
int PMPI_Type_get_extent(MPI_Datatype, MPI_Aint*, MPI_Aint*);
int PMPI_Type_get_true_extent(MPI_Datatype, MPI_Aint*, MPI_Aint*);
int PMPI_Type_size(MPI_Datatype, int*);
int PMPI_Get_elements(const MPI_Status*, MPI_Datatype, int*);
extern char ompi_mpi_int[], ompi_mpi_double[], ompi_mpi_char[], ompi_mpi_short[], ompi_mpi_long[],
    ompi_mpi_long_double[], ompi_mpi_double_int[];
}

namespace ferry::mpi {
namespace {

MPI_Datatype INT_T = reinterpret_cast<MPI_Datatype>(ompi_mpi_int);
MPI_Datatype DOUBLE_T = reinterpret_cast<MPI_Datatype>(ompi_mpi_double);
MPI_Datatype CHAR_T = reinterpret_cast<MPI_Datatype>(ompi_mpi_char);
MPI_Datatype SHORT_T = reinterpret_cast<MPI_Datatype>(ompi_mpi_short);
MPI_Datatype LONG_T = reinterpret_cast<MPI_Datatype>(ompi_mpi_long);
MPI_Datatype LDOUBLE_T = reinterpret_cast<MPI_Datatype>(ompi_mpi_long_double);
MPI_Datatype DOUBLE_INT_T = reinterpret_cast<MPI_Datatype>(ompi_mpi_double_int);

DatatypeRecord* rec(MPI_Datatype t) { return reinterpret_cast<DatatypeRecord*>(t); }

struct Shape {
  int size;
  long lb, extent, true_lb, true_extent;
  bool operator==(const Shape&) const = default;
};
std::ostream& operator<<(std::ostream& o, const Shape& s) {
  return o << "size " << s.size << " lb " << s.lb << " ext " << s.extent << " tlb " << s.true_lb << " tex "
            << s.true_extent;
}
Shape shape(MPI_Datatype t) {
  Shape s{};
  MPI_Aint a, b;
  PMPI_Type_size(t, &s.size);
  PMPI_Type_get_extent(t, &a, &b);
  s.lb = a, s.extent = b;
  PMPI_Type_get_true_extent(t, &a, &b);
  s.true_lb = a, s.true_extent = b;
  return s;
}
MPI_Datatype strct(std::initializer_list<std::pair<MPI_Aint, MPI_Datatype>> parts) {
  std::vector<int> bl;
  std::vector<MPI_Aint> d;
  std::vector<MPI_Datatype> t;
  for (auto& [disp, type] : parts) bl.push_back(1), d.push_back(disp), t.push_back(type);
  MPI_Datatype out;
  PMPI_Type_create_struct(static_cast<int>(bl.size()), bl.data(), d.data(), t.data(), &out);
  return out;
}

// Figures from Open MPI 4.1 (Debian 12) for the same constructions.
TEST(DatatypeBounds, MatchOpenMpi) {
  EXPECT_EQ(shape(strct({{0, DOUBLE_T}, {8, CHAR_T}})), (Shape{9, 0, 16, 0, 9}));
  EXPECT_EQ(shape(strct({{0, INT_T}, {4, CHAR_T}})), (Shape{5, 0, 8, 0, 5}));
  EXPECT_EQ(shape(strct({{-3, CHAR_T}, {0, DOUBLE_T}})), (Shape{9, -3, 16, -3, 11}));
  EXPECT_EQ(shape(strct({{0, SHORT_T}, {8, CHAR_T}})), (Shape{3, 0, 10, 0, 9}));
  EXPECT_EQ(shape(strct({{0, LDOUBLE_T}, {16, CHAR_T}})), (Shape{17, 0, 32, 0, 17}));
  EXPECT_EQ(shape(strct({{0, DOUBLE_INT_T}, {8, CHAR_T}})), (Shape{13, 0, 16, 0, 12}));
  MPI_Datatype t, r;
  PMPI_Type_vector(3, 1, -2, INT_T, &t);
  EXPECT_EQ(shape(t), (Shape{12, -16, 20, -16, 20}));
  PMPI_Type_create_resized(INT_T, -4, 16, &r);
  EXPECT_EQ(shape(r), (Shape{4, -4, 16, 0, 4}));
  PMPI_Type_contiguous(2, r, &t);
  EXPECT_EQ(shape(t), (Shape{8, -4, 32, 0, 20}));
  EXPECT_EQ(shape(strct({{0, r}, {100, CHAR_T}})), (Shape{5, -4, 16, 0, 101}));
  PMPI_Type_vector(2, 1, 1, DOUBLE_INT_T, &t);
  EXPECT_EQ(shape(t), (Shape{24, 0, 32, 0, 28}));
  int bl[2] = {1, 1};
  MPI_Aint d[2] = {0, 12};
  PMPI_Type_create_hindexed(2, bl, d, DOUBLE_T, &t);
  EXPECT_EQ(shape(t), (Shape{16, 0, 24, 0, 20}));
  MPI_Datatype rd;
  PMPI_Type_create_resized(DOUBLE_T, 0, 12, &rd);
  EXPECT_EQ(shape(strct({{0, rd}, {12, CHAR_T}})), (Shape{9, 0, 12, 0, 13}));
  PMPI_Type_contiguous(0, DOUBLE_T, &t);
  EXPECT_EQ(shape(t), (Shape{0, 0, 0, 0, 0}));
  int sz[2] = {4, 5}, sub[2] = {2, 3}, st[2] = {1, 1};
  PMPI_Type_create_subarray(2, sz, sub, st, 0, INT_T, &t);
  EXPECT_EQ(shape(t), (Shape{24, 0, 80, 24, 32}));
  PMPI_Type_create_subarray(2, sz, sub, st, 1, INT_T, &t);
  EXPECT_EQ(shape(t), (Shape{24, 0, 80, 20, 40}));
}

TEST(DatatypeBuffers, ColumnRoundTripLeavesGaps) {
  MPI_Datatype col;
  PMPI_Type_vector(4, 1, 3, DOUBLE_T, &col);
  double m[4][3], back[4][3];
  for (int i = 0; i < 12; i++) (&m[0][0])[i] = i, (&back[0][0])[i] = -1;
  SendBuffer s = send_buffer(&m[0][1], 1, rec(col));
  EXPECT_EQ(s.count, 4);
  EXPECT_EQ(s.type, rec(DOUBLE_T)->lh);  // homogeneous: packed as MPI_DOUBLE
  const auto* packed = static_cast<const double*>(s.span.data);
  EXPECT_EQ(std::vector<double>(packed, packed + 4), (std::vector<double>{1, 4, 7, 10}));
  RecvBuffer r = recv_buffer(&back[0][2], 1, rec(col));
  std::memcpy(r.span.data, s.span.data, s.span.bytes);
  PMPI_Type_free(&col);  // the receive keeps the map
  r.finish(3 * sizeof(double));  // a short message: 3 of 4 elements
  for (int i = 0; i < 4; i++) {
    EXPECT_EQ(back[i][0], -1);
    EXPECT_EQ(back[i][1], -1);
    EXPECT_EQ(back[i][2], i < 3 ? 1 + 3 * i : -1);
  }
}

TEST(DatatypeBuffers, StructIsBytesAndBottomIsAbsolute) {
  struct S {
    char c;
    double d;
    short s;
  } a{'x', 2.5, 7}, b;
  std::memset(&b, 0x55, sizeof b);
  MPI_Aint base = reinterpret_cast<MPI_Aint>(&b);
  MPI_Datatype t = strct({{offsetof(S, c), CHAR_T}, {offsetof(S, d), DOUBLE_T}, {offsetof(S, s), SHORT_T}});
  SendBuffer s = send_buffer(&a, 1, rec(t));
  EXPECT_EQ(s.type, byte_type()->lh);
  EXPECT_EQ(s.count, 11);
  // MPI_BOTTOM: the same fields at absolute addresses.
  MPI_Datatype abs_t = strct({{base + static_cast<MPI_Aint>(offsetof(S, c)), CHAR_T},
                              {base + static_cast<MPI_Aint>(offsetof(S, d)), DOUBLE_T},
                              {base + static_cast<MPI_Aint>(offsetof(S, s)), SHORT_T}});
  RecvBuffer r = recv_buffer(nullptr, 1, rec(abs_t));
  std::memcpy(r.span.data, s.span.data, s.span.bytes);
  r.finish(s.span.bytes);
  EXPECT_EQ(b.c, 'x');
  EXPECT_EQ(b.d, 2.5);
  EXPECT_EQ(b.s, 7);
  EXPECT_EQ(reinterpret_cast<unsigned char*>(&b)[1], 0x55);  // padding untouched
  MPI_Status st{};
  st._ucount = 22;
  int n;
  PMPI_Get_elements(&st, t, &n);
  EXPECT_EQ(n, 6);
  st._ucount = 12;
  PMPI_Get_elements(&st, t, &n);
  EXPECT_EQ(n, MPI_UNDEFINED);
}

TEST(DatatypeBuffers, PairTypeKeepsWholeElements) {
  MPI_Datatype t;
  PMPI_Type_contiguous(3, DOUBLE_INT_T, &t);
  SendBuffer s = send_buffer(nullptr, 0, rec(t));
  EXPECT_EQ(s.count, 0);
  struct DI {
    double v;
    int i;
  } in[3] = {{1, 1}, {2, 2}, {3, 3}}, out[3] = {};
  s = send_buffer(in, 1, rec(t));
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.type, rec(DOUBLE_INT_T)->lh);
  RecvBuffer r = recv_buffer(out, 1, rec(t));
  std::memcpy(r.span.data, s.span.data, s.span.bytes);
  r.finish(36);  // status bytes: 12 per element
  EXPECT_EQ(out[2].v, 3);
  EXPECT_EQ(out[2].i, 3);
}

// --- user_reduce with a simulated communicator ------------------------------------------------

constexpr long kP = 1000003;
MPI_Datatype mat_t;
int calls_with_wrong_handle = 0;

void mul(const long* a, const long* b, long* c) {
  long r[4] = {(a[0] * b[0] + a[1] * b[2]) % kP, (a[0] * b[1] + a[1] * b[3]) % kP, (a[2] * b[0] + a[3] * b[2]) % kP,
               (a[2] * b[1] + a[3] * b[3]) % kP};
  std::memcpy(c, r, sizeof r);
}
void matmul(void* in, void* inout, int* len, MPI_Datatype* dt) {
  if (*dt != mat_t) ++calls_with_wrong_handle;
  for (int k = 0; k < *len; k++) mul(static_cast<long*>(in) + 4 * k, static_cast<long*>(inout) + 4 * k,
                                    static_cast<long*>(inout) + 4 * k);
}
// Rank r's input vector: `elements` matrices.
std::vector<long> input_of(int r, int elements) {
  std::vector<long> v(static_cast<std::size_t>(4 * elements));
  for (std::size_t i = 0; i < v.size(); i++) v[i] = static_cast<long>((r * 31 + i * 7 + 3) % 89 + (i % 4 == 1 ? r : 0));
  return v;
}

int n_ranks, me;
std::function<std::vector<std::byte>(int)> send_of;  // what rank i hands to the collective

int simulated(GatherKind kind, const CollectiveBuffers& b, int root, CommRecord*) {
  std::vector<std::byte> mine = send_of(me);
  EXPECT_EQ(std::memcmp(mine.data(), b.send.data, b.send.bytes), 0) << "operands packed differently";
  auto block = static_cast<std::size_t>(b.send_count);
  if (b.recv.data == nullptr) return kind == GatherKind::gather && me != root ? 0 : 1;
  auto* out = static_cast<std::byte*>(b.recv.data);
  for (int i = 0; i < n_ranks; i++) {
    std::vector<std::byte> theirs = send_of(i);
    std::size_t from = kind == GatherKind::alltoall ? block * static_cast<std::size_t>(me) : 0;
    std::memcpy(out + block * static_cast<std::size_t>(i), theirs.data() + from, block);
  }
  return 0;
}

std::vector<long> product(int first, int last, int elements, int block) {
  std::vector<long> acc(static_cast<std::size_t>(4 * elements));
  auto part = [&](int r) {
    std::vector<long> v = input_of(r, elements * n_ranks);
    return std::vector<long>(v.begin() + 4 * elements * block, v.begin() + 4 * elements * (block + 1));
  };
  acc = part(last);
  for (int r = last - 1; r >= first; --r) {
    std::vector<long> x = part(r);
    for (int k = 0; k < elements; k++) mul(&x[static_cast<std::size_t>(4 * k)], &acc[static_cast<std::size_t>(4 * k)],
                                           &acc[static_cast<std::size_t>(4 * k)]);
  }
  return acc;
}

TEST(UserReduce, EveryKindInRankOrder) {
  PMPI_Type_contiguous(4, LONG_T, &mat_t);
  OpRecord op{{kLiveMagic, Kind::op}, kLhNone, reinterpret_cast<void*>(&matmul), false};
  set_move_operands_for_test(&simulated);
  n_ranks = 4;
  const int k = 2;  // matrices per block
  for (me = 0; me < n_ranks; ++me) {
    CommRecord comm{{kLiveMagic, Kind::comm}, 0, me, n_ranks, 0, 0, nullptr, {}};
    // Allreduce / Scan / Exscan / Reduce at root 2: operands of k matrices (block 0 of input_of).
    send_of = [&](int r) {
      std::vector<long> v = input_of(r, k * n_ranks);
      return std::vector<std::byte>(reinterpret_cast<std::byte*>(v.data()), reinterpret_cast<std::byte*>(v.data() + 4 * k));
    };
    std::vector<long> in = input_of(me, k * n_ranks), out(static_cast<std::size_t>(4 * k), -1);
    user_reduce("test", ReduceKind::allreduce, in.data(), out.data(), k, nullptr, rec(mat_t), &op, 0, &comm);
    EXPECT_EQ(out, product(0, n_ranks - 1, k, 0)) << "allreduce at " << me;
    std::copy(in.begin(), in.begin() + 4 * k, out.begin());
    user_reduce("test", ReduceKind::scan, nullptr, out.data(), k, nullptr, rec(mat_t), &op, 0, &comm);
    EXPECT_EQ(out, product(0, me, k, 0)) << "scan in place at " << me;
    std::fill(out.begin(), out.end(), -1);
    user_reduce("test", ReduceKind::exscan, in.data(), out.data(), k, nullptr, rec(mat_t), &op, 0, &comm);
    if (me > 0) EXPECT_EQ(out, product(0, me - 1, k, 0)) << "exscan at " << me;
    else EXPECT_EQ(out, std::vector<long>(static_cast<std::size_t>(4 * k), -1));
    std::fill(out.begin(), out.end(), -1);
    user_reduce("test", ReduceKind::reduce, in.data(), out.data(), k, nullptr, rec(mat_t), &op, 2, &comm);
    if (me == 2) EXPECT_EQ(out, product(0, n_ranks - 1, k, 0));
    else EXPECT_EQ(out, std::vector<long>(static_cast<std::size_t>(4 * k), -1));
    // Reduce_scatter_block: k matrices per rank, rank r gets block r.
    send_of = [&](int r) {
      std::vector<long> v = input_of(r, k * n_ranks);
      return std::vector<std::byte>(reinterpret_cast<std::byte*>(v.data()), reinterpret_cast<std::byte*>(v.data() + v.size()));
    };
    user_reduce("test", ReduceKind::reduce_scatter_block, in.data(), out.data(), k, nullptr, rec(mat_t), &op, 0, &comm);
    EXPECT_EQ(out, product(0, n_ranks - 1, k, me)) << "reduce_scatter_block at " << me;
    // Reduce_scatter with counts {2,2,2,2} in place (the padded blocks equal the whole blocks).
    int counts[4] = {k, k, k, k};
    std::vector<long> whole = in;
    user_reduce("test", ReduceKind::reduce_scatter, nullptr, whole.data(), 0, counts, rec(mat_t), &op, 0, &comm);
    EXPECT_EQ(std::vector<long>(whole.begin(), whole.begin() + 4 * k), product(0, n_ranks - 1, k, me));
    // Unequal counts {1,2,1,2}: rank b gets the first counts[b] matrices of every rank's block b;
    // the collective moves blocks padded to 2 matrices.
    int uneven[4] = {1, 2, 1, 2};
    auto vector_of = [&](int r) {  // rank r's input: counts[b] matrices of its block b, in order
      std::vector<long> all = input_of(r, k * n_ranks), v;
      for (int b = 0; b < n_ranks; b++)
        v.insert(v.end(), all.begin() + 4 * k * b, all.begin() + 4 * k * b + 4 * uneven[b]);
      return v;
    };
    send_of = [&](int r) {
      std::vector<long> v = vector_of(r);
      std::vector<std::byte> padded(static_cast<std::size_t>(n_ranks) * 2 * 4 * sizeof(long));
      std::size_t at = 0;
      for (int b = 0; b < n_ranks; b++) {
        std::size_t bytes = static_cast<std::size_t>(uneven[b]) * 4 * sizeof(long);
        std::memcpy(padded.data() + static_cast<std::size_t>(b) * 2 * 4 * sizeof(long),
                    reinterpret_cast<std::byte*>(v.data()) + at, bytes);
        at += bytes;
      }
      return padded;
    };
    std::vector<long> mine = vector_of(me), got(static_cast<std::size_t>(4 * uneven[me]), -1);
    user_reduce("test", ReduceKind::reduce_scatter, mine.data(), got.data(), 0, uneven, rec(mat_t), &op, 0, &comm);
    std::vector<long> want = product(0, n_ranks - 1, k, me);
    want.resize(static_cast<std::size_t>(4 * uneven[me]));
    EXPECT_EQ(got, want) << "reduce_scatter with unequal counts at " << me;
  }
  EXPECT_EQ(calls_with_wrong_handle, 0);
  set_move_operands_for_test(nullptr);
}

}  // namespace
}  // namespace ferry::mpi
