// SPDX-License-Identifier: Apache-2.0
// Cartesian topologies. A Cartesian communicator is a lower-half split of its parent (ranks
// below the grid's size take colour 0 keyed by their rank, the others MPI_UNDEFINED: rank order
// is kept, `reorder` is ignored, as MPI allows) plus a CartTopology in its upper-half record.
// Coordinates, shifts and ranks are pure arithmetic on that topology (row-major: the last
// dimension varies fastest, as in MPI). Cart_sub is a split of the Cartesian communicator by the
// coordinates that are dropped, keyed by rank. The topology lives in the application's memory, so
// a checkpoint keeps it; the lower half only ever sees ordinary communicators.
#include <algorithm>
#include <vector>

#include "state.hpp"

namespace ferry::mpi {

struct CartTopology {
  std::vector<int> dims;
  std::vector<int> periods;
};

void free_cart(CartTopology* cart) { delete cart; }

}  // namespace ferry::mpi

using namespace ferry::mpi;

namespace {

constexpr int kCart = 1;  // MPI_CART
constexpr int kErrTopology = 11, kErrDims = 12;

CommRecord* cart_arg(const char* fn, MPI_Comm comm) {
  CommRecord* c = comm_arg(fn, comm);
  if (c->cart == nullptr) fatal(fn, "not a Cartesian communicator (MPI_ERR_TOPOLOGY)");
  return c;
}

std::vector<int> coords_of(const CartTopology& t, int rank) {
  std::vector<int> coords(t.dims.size());
  for (std::size_t i = t.dims.size(); i-- > 0;) {
    coords[i] = rank % t.dims[i];
    rank /= t.dims[i];
  }
  return coords;
}

// MPI_PROC_NULL when a coordinate falls off a non-periodic dimension.
int rank_of(const CartTopology& t, std::vector<int> coords) {
  int rank = 0;
  for (std::size_t i = 0; i < t.dims.size(); ++i) {
    int d = t.dims[i];
    if (coords[i] < 0 || coords[i] >= d) {
      if (!t.periods[i]) return MPI_PROC_NULL;
      coords[i] = ((coords[i] % d) + d) % d;
    }
    rank = rank * d + coords[i];
  }
  return rank;
}

MPI_Comm attach_topology(MPI_Comm made, std::vector<int> dims, std::vector<int> periods) {
  if (made == reinterpret_cast<MPI_Comm>(null_comm_record())) return made;
  auto* c = as_record<CommRecord>(made, Kind::comm);
  c->cart = new CartTopology{std::move(dims), std::move(periods)};
  return made;
}

}  // namespace

FERRY_MPI_FUNCTION(int, Cart_create, (MPI_Comm comm_old, int ndims, const int dims[], const int periods[],
                                      int /*reorder*/, MPI_Comm* comm_cart)) {
  const char* fn = "MPI_Cart_create";
  CommRecord* parent = comm_arg(fn, comm_old);
  if (ndims < 0) return comm_error(fn, parent, kErrDims, "negative number of dimensions (MPI_ERR_DIMS)");
  long cells = 1;
  for (int i = 0; i < ndims; ++i) {
    if (dims[i] <= 0) return comm_error(fn, parent, kErrDims, "a dimension <= 0 (MPI_ERR_DIMS)");
    cells *= dims[i];
  }
  if (cells > parent->size) return comm_error(fn, parent, kErrTopology, "the grid is larger than the communicator (MPI_ERR_TOPOLOGY)");
  count_collective(parent);
  NewComm made;
  bool in_grid = parent->rank < cells;
  check(fn, lower_for(fn).comm_split(parent->lh, in_grid ? 0 : MPI_UNDEFINED, parent->rank, made));
  ReplayEntry entry;
  entry.kind = ReplayKind::cart_create;
  entry.inputs[0] = parent;
  entry.args[0] = ndims;
  for (int i = 0; i < ndims; ++i) entry.arrays.push_back(dims[i]);
  for (int i = 0; i < ndims; ++i) entry.arrays.push_back(periods[i] ? 1 : 0);
  ReplayEntry& logged = upper().log.append(entry);
  std::vector<int> d(dims, dims + ndims), p(ndims);
  for (int i = 0; i < ndims; ++i) p[static_cast<std::size_t>(i)] = periods[i] ? 1 : 0;
  *comm_cart = attach_topology(make_comm(made, logged.seq, parent), d, p);
  logged.result = *comm_cart;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Cart_sub, (MPI_Comm comm, const int remain_dims[], MPI_Comm* newcomm)) {
  const char* fn = "MPI_Cart_sub";
  CommRecord* c = cart_arg(fn, comm);
  const CartTopology& t = *c->cart;
  std::vector<int> coords = coords_of(t, c->rank), dims, periods;
  int color = 0, key = 0;
  for (std::size_t i = 0; i < t.dims.size(); ++i) {
    if (remain_dims[i]) {
      key = key * t.dims[i] + coords[i];
      dims.push_back(t.dims[i]);
      periods.push_back(t.periods[i]);
    } else {
      color = color * t.dims[i] + coords[i];
    }
  }
  count_collective(c);
  NewComm made;
  check(fn, lower_for(fn).comm_split(c->lh, color, key, made));
  ReplayEntry entry;
  entry.kind = ReplayKind::cart_sub;
  entry.inputs[0] = c;
  for (std::size_t i = 0; i < t.dims.size(); ++i) entry.arrays.push_back(remain_dims[i] ? 1 : 0);
  ReplayEntry& logged = upper().log.append(entry);
  *newcomm = attach_topology(make_comm(made, logged.seq, c), dims, periods);
  logged.result = *newcomm;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Cartdim_get, (MPI_Comm comm, int* ndims)) {
  *ndims = static_cast<int>(cart_arg("MPI_Cartdim_get", comm)->cart->dims.size());
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Cart_get, (MPI_Comm comm, int maxdims, int dims[], int periods[], int coords[])) {
  CommRecord* c = cart_arg("MPI_Cart_get", comm);
  const CartTopology& t = *c->cart;
  std::vector<int> mine = coords_of(t, c->rank);
  for (int i = 0; i < maxdims && i < static_cast<int>(t.dims.size()); ++i) {
    dims[i] = t.dims[static_cast<std::size_t>(i)];
    periods[i] = t.periods[static_cast<std::size_t>(i)];
    coords[i] = mine[static_cast<std::size_t>(i)];
  }
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Cart_coords, (MPI_Comm comm, int rank, int maxdims, int coords[])) {
  const char* fn = "MPI_Cart_coords";
  CommRecord* c = cart_arg(fn, comm);
  if (rank < 0 || rank >= c->size) return comm_error(fn, c, MPI_ERR_RANK, "invalid rank (MPI_ERR_RANK)");
  std::vector<int> out = coords_of(*c->cart, rank);
  for (int i = 0; i < maxdims && i < static_cast<int>(out.size()); ++i) coords[i] = out[static_cast<std::size_t>(i)];
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Cart_rank, (MPI_Comm comm, const int coords[], int* rank)) {
  const char* fn = "MPI_Cart_rank";
  CommRecord* c = cart_arg(fn, comm);
  const CartTopology& t = *c->cart;
  int r = rank_of(t, std::vector<int>(coords, coords + t.dims.size()));
  if (r == MPI_PROC_NULL) return comm_error(fn, c, MPI_ERR_RANK, "coordinates outside a non-periodic dimension (MPI_ERR_RANK)");
  *rank = r;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Cart_shift, (MPI_Comm comm, int direction, int disp, int* rank_source, int* rank_dest)) {
  const char* fn = "MPI_Cart_shift";
  CommRecord* c = cart_arg(fn, comm);
  const CartTopology& t = *c->cart;
  if (direction < 0 || direction >= static_cast<int>(t.dims.size()))
    return comm_error(fn, c, MPI_ERR_ARG, "invalid direction (MPI_ERR_ARG)");
  std::vector<int> coords = coords_of(t, c->rank);
  std::vector<int> up = coords, down = coords;
  up[static_cast<std::size_t>(direction)] += disp;
  down[static_cast<std::size_t>(direction)] -= disp;
  *rank_dest = rank_of(t, up);
  *rank_source = rank_of(t, down);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Topo_test, (MPI_Comm comm, int* status)) {
  *status = comm_arg("MPI_Topo_test", comm)->cart != nullptr ? kCart : MPI_UNDEFINED;
  return MPI_SUCCESS;
}

// Balanced factorisation of nnodes over the dimensions left 0: the prime factors, largest
// first, each to the free dimension with the smallest product so far; then the free dimensions
// in non-increasing order (what MPI specifies, and Open MPI's results for these sizes).
FERRY_MPI_FUNCTION(int, Dims_create, (int nnodes, int ndims, int dims[])) {
  const char* fn = "MPI_Dims_create";
  if (ndims < 0 || nnodes <= 0) fatal(fn, "invalid arguments (MPI_ERR_DIMS)");
  int fixed = 1;
  std::vector<int> free_dims;
  for (int i = 0; i < ndims; ++i) {
    if (dims[i] < 0) fatal(fn, "a negative dimension (MPI_ERR_DIMS)");
    if (dims[i] > 0) fixed *= dims[i];
    else free_dims.push_back(i);
  }
  if (nnodes % fixed != 0) fatal(fn, "nnodes is not a multiple of the fixed dimensions (MPI_ERR_DIMS)");
  int left = nnodes / fixed;
  if (free_dims.empty()) {
    if (left != 1) fatal(fn, "the fixed dimensions do not multiply to nnodes (MPI_ERR_DIMS)");
    return MPI_SUCCESS;
  }
  std::vector<int> primes;
  for (int p = 2; p * p <= left; ++p)
    while (left % p == 0) {
      primes.push_back(p);
      left /= p;
    }
  if (left > 1) primes.push_back(left);
  std::sort(primes.rbegin(), primes.rend());
  std::vector<int> sizes(free_dims.size(), 1);
  for (int p : primes) *std::min_element(sizes.begin(), sizes.end()) *= p;
  std::sort(sizes.rbegin(), sizes.rend());
  for (std::size_t i = 0; i < free_dims.size(); ++i) dims[free_dims[i]] = sizes[i];
  return MPI_SUCCESS;
}
