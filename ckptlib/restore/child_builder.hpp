// SPDX-License-Identifier: Apache-2.0
// ChildBuilder: the remote-syscall steps that rebuild a process inside the restore child.
// It drives one seized ptrace::Tracee through the gadget page (code at gadget, scratch page
// right after it for syscall arguments) and turns raw results into Errors naming the step.
// Owns nothing but the child-side temporary fds it opened (closed by close_temps()).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <span>
#include <string>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"
#include "ptrace/tracee.hpp"

namespace ferry::restore {

class ChildBuilder {
public:
  ChildBuilder(ptrace::Tracee& t, uint64_t gadget, uint64_t page);

  pid_t pid() const noexcept { return t_.tid(); }
  ptrace::Tracee& tracee() noexcept { return t_; }
  uint64_t gadget() const noexcept { return gadget_; }
  uint64_t scratch() const noexcept { return scratch_; }
  uint64_t scratch_size() const noexcept { return page_; }

  // One remote system call; a negative result becomes Error::from_errno(what).
  Result<uint64_t> call(const std::string& what, long nr, std::initializer_list<uint64_t> args = {});
  // Copies bytes into the scratch page at offset off; returns their address in the child.
  Result<uint64_t> put(std::span<const std::byte> data, uint64_t off = 0);
  Result<uint64_t> put_string(const std::string& s, uint64_t off = 0);

  // openat(AT_FDCWD, path, flags|O_CLOEXEC, mode) in the child.
  Result<int> open(const std::string& path, int flags, int mode = 0);
  Result<void> close(int fd);
  // Moves fd to the lowest number >= temp_base (F_DUPFD_CLOEXEC) and closes the original, so
  // it can never sit on a number the image wants. Remembered for close_temps().
  Result<int> park(int fd, const std::string& what);
  void set_temp_base(int base) noexcept { temp_base_ = base; }
  Result<void> close_temps();

  // Creates an unlinked file holding blob `blob` (O_TMPFILE in dir, else a memfd called
  // name) or a memfd (dir empty); returns a parked child fd. The parent writes the content
  // through /proc/PID/fd/N in bounded chunks.
  Result<int> materialize_blob(image::ImageSource& src, uint32_t blob, const std::string& dir,
                               const std::string& name);
  // Writes blob bytes into the child's fd (from offset 0), through /proc/PID/fd/fd.
  Result<void> fill_from_blob(image::ImageSource& src, uint32_t blob, int fd, const std::string& what);

  // blob id -> parked child fd holding it (shm/memfd regions and fds share them).
  std::map<uint32_t, int>& blob_fds() noexcept { return blob_fds_; }

private:
  ptrace::Tracee& t_;
  uint64_t gadget_;
  uint64_t scratch_;
  uint64_t page_;
  int temp_base_ = 3;
  std::vector<int> temps_;
  std::map<uint32_t, int> blob_fds_;
};

// Bytes moved per read_pages/write_memory round trip: large enough to amortise the calls,
// small enough that restore never holds more than this of the image in memory.
inline constexpr size_t kCopyBatch = 8u << 20;

}  // namespace ferry::restore
