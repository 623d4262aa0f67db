// SPDX-License-Identifier: Apache-2.0
// Resolving buffer references: the channel's data area, or cross-memory attach (app_memory.hpp).
#include "app_memory.hpp"

#include <sys/uio.h>

#include <cstring>

namespace ferry::mpi::proxy {

bool AppMemory::in_data_area(const channel::BufRef& ref) const {
  return ref.at <= channel::kDataBytes && ref.bytes <= channel::kDataBytes - ref.at;
}

// process_vm_{readv,writev} may move fewer bytes than asked (it stops at an unmapped page);
// loop until done or no progress.
static bool cma_move(pid_t pid, void* local, std::uint64_t remote, std::size_t bytes, bool to_app) {
  std::size_t done = 0;
  while (done < bytes) {
    iovec here{static_cast<char*>(local) + done, bytes - done};
    iovec there{reinterpret_cast<void*>(remote + done), bytes - done};
    ssize_t n = to_app ? process_vm_writev(pid, &here, 1, &there, 1, 0)
                       : process_vm_readv(pid, &here, 1, &there, 1, 0);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

void* AppMemory::read(const channel::BufRef& ref, std::vector<char>& scratch) const {
  switch (ref.where) {
    case channel::Where::none:
      return nullptr;
    case channel::Where::shm:
      return in_data_area(ref) ? layout_->data + ref.at : nullptr;
    case channel::Where::app:
      scratch.resize(ref.bytes == 0 ? 1 : ref.bytes);
      return cma_move(app_, scratch.data(), ref.at, ref.bytes, false) ? scratch.data() : nullptr;
  }
  return nullptr;
}

void* AppMemory::writable(const channel::BufRef& ref, std::vector<char>& scratch) const {
  switch (ref.where) {
    case channel::Where::none:
      return nullptr;
    case channel::Where::shm:
      return in_data_area(ref) ? layout_->data + ref.at : nullptr;
    case channel::Where::app:
      scratch.resize(ref.bytes == 0 ? 1 : ref.bytes);
      return scratch.data();
  }
  return nullptr;
}

bool AppMemory::write_back(const channel::BufRef& ref, const void* local, std::size_t bytes) const {
  if (ref.where != channel::Where::app || bytes == 0) return true;
  if (bytes > ref.bytes) bytes = ref.bytes;
  return cma_move(app_, const_cast<void*>(local), ref.at, bytes, true);
}

bool AppMemory::deliver(const channel::BufRef& ref, const void* local, std::size_t bytes) const {
  if (bytes > ref.bytes) bytes = ref.bytes;
  if (bytes == 0) return true;
  if (ref.where == channel::Where::shm) {
    if (!in_data_area(ref)) return false;
    std::memcpy(layout_->data + ref.at, local, bytes);
    return true;
  }
  if (ref.where == channel::Where::app) return cma_move(app_, const_cast<void*>(local), ref.at, bytes, true);
  return false;
}

}  // namespace ferry::mpi::proxy
