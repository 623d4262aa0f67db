// SPDX-License-Identifier: Apache-2.0
// The proxy's call server: runs each channel::Call against the real Open MPI library and fills
// the channel::Reply. Owns the real handles behind the lower-half ids it gives out.
#pragma once

#include <mpi.h>

#include <vector>

#include "app_memory.hpp"
#include "mpi/channel/channel.hpp"

namespace ferry::mpi::proxy {

class Server {
 public:
  Server(channel::Layout* layout, pid_t app);

  // Runs one call; returns false after a successful finalize (the application is done with MPI).
  bool serve(const channel::Call& call, channel::Reply& reply);

 private:
  struct PendingRequest {
    MPI_Request real = MPI_REQUEST_NULL;
    std::vector<char> buffer;  // the proxy's copy of the payload (send) or landing area (recv)
    MPI_Datatype type = MPI_DATATYPE_NULL;
    bool receive = false;
  };

  MPI_Comm comm(std::uint32_t id) const;
  MPI_Datatype type(std::uint32_t id) const;
  MPI_Op op(std::uint32_t id) const;
  std::uint32_t add_comm(MPI_Comm c);
  void describe_new_comm(MPI_Comm c, std::uint32_t id, channel::Reply& reply);
  std::uint32_t add_request(PendingRequest r);
  int complete(std::uint32_t id, const MPI_Status& st, const channel::BufRef& into,
               channel::Reply& reply);

  int hello(channel::Reply& reply);
  int p2p(const channel::Call& call, channel::Reply& reply);
  int requests(const channel::Call& call, channel::Reply& reply);
  int collective(const channel::Call& call, channel::Reply& reply);
  int gather_like(const channel::Call& call);
  int comms(const channel::Call& call, channel::Reply& reply);

  channel::Layout* layout_;
  AppMemory memory_;
  std::vector<MPI_Datatype> types_;
  std::vector<MPI_Op> ops_;
  std::vector<MPI_Comm> comms_;         // index = lower-half id; MPI_COMM_NULL marks a free slot
  std::vector<PendingRequest> requests_;  // index = lower-half id; real == NULL marks a free slot
  std::vector<char> scratch_[3];
};

}  // namespace ferry::mpi::proxy
