// SPDX-License-Identifier: Apache-2.0
// The proxy's view of a buffer argument (channel::BufRef): either bytes already staged in the
// channel's data area, or a span of the application's memory reached by cross-memory attach
// (process_vm_readv/process_vm_writev; the proxy is the application's parent, so the kernel's
// ptrace-access check passes for the same user).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <vector>

#include "mpi/channel/channel.hpp"

namespace ferry::mpi::proxy {

class AppMemory {
 public:
  AppMemory(channel::Layout* layout, pid_t app) : layout_(layout), app_(app) {}
  void set_app(pid_t app) { app_ = app; }

  // A local pointer holding the buffer's bytes as the application wrote them (shm: in place;
  // app: copied into `scratch`). nullptr when the reference is invalid or the copy failed.
  void* read(const channel::BufRef& ref, std::vector<char>& scratch) const;
  // A local pointer the real library may write `ref.bytes` into; call `write_back` afterwards.
  void* writable(const channel::BufRef& ref, std::vector<char>& scratch) const;
  // Makes the first `bytes` of `local` visible to the application (no-op for shm). False on
  // failure (the application died or the range is not mapped).
  bool write_back(const channel::BufRef& ref, const void* local, std::size_t bytes) const;
  // Copies `bytes` from a private proxy buffer to the reference's destination.
  bool deliver(const channel::BufRef& ref, const void* local, std::size_t bytes) const;

 private:
  bool in_data_area(const channel::BufRef& ref) const;

  channel::Layout* layout_;
  pid_t app_;
};

}  // namespace ferry::mpi::proxy
