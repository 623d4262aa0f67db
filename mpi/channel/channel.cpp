// SPDX-License-Identifier: Apache-2.0
// Creating, attaching and waking the shared-memory channel (layout in channel.hpp).
#include "channel.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

namespace ferry::mpi::channel {

static_assert(sizeof(Call) <= 256, "a call fits in four cache lines");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

WaitPolicy WaitPolicy::from_env() {
  WaitPolicy policy;
  cpu_set_t mask;
  CPU_ZERO(&mask);
  long local_ranks = 1;
  if (const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE"); local != nullptr) {
    local_ranks = std::max(1L, std::strtol(local, nullptr, 10));
  }
  if (sched_getaffinity(0, sizeof mask, &mask) == 0 && CPU_COUNT(&mask) >= 2 &&
      sysconf(_SC_NPROCESSORS_ONLN) >= 2 * local_ranks) {
    policy.spins = 2000;
  }
  if (const char* spin = std::getenv("FERRY_MPI_SPIN"); spin != nullptr && *spin != '\0') {
    policy.spins = static_cast<std::uint32_t>(std::strtoul(spin, nullptr, 10));
  }
  if (const char* yield = std::getenv("FERRY_MPI_YIELD_US"); yield != nullptr && *yield != '\0') {
    policy.yield_us = static_cast<std::uint32_t>(std::strtoul(yield, nullptr, 10));
  }
  return policy;
}

std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

bool futex_wait_100ms(std::atomic<std::uint32_t>& word, std::uint32_t seen) {
  return futex_wait_for(word, seen, 100'000'000);
}

bool futex_wait_for(std::atomic<std::uint32_t>& word, std::uint32_t seen, std::uint64_t ns) {
  timespec timeout{static_cast<time_t>(ns / 1'000'000'000u), static_cast<long>(ns % 1'000'000'000u)};
  long rc = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, seen, &timeout,
                    nullptr, 0);
  return !(rc == -1 && errno == ETIMEDOUT);
}

void futex_wake_one(std::atomic<std::uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

void cpu_relax_yield() { sched_yield(); }

void post(Doorbell& bell, std::uint32_t value) {
  bell.seq.store(value, std::memory_order_seq_cst);
  if (bell.sleeping.load(std::memory_order_seq_cst) != 0) futex_wake_one(bell.seq);
}

Layout* create(int* fd_out) {
  int fd = static_cast<int>(syscall(SYS_memfd_create, "ferry-mpi-channel", MFD_CLOEXEC));
  if (fd < 0) return nullptr;
  if (ftruncate(fd, static_cast<off_t>(kMappingBytes)) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return nullptr;
  }
  void* mem = mmap(nullptr, kMappingBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) {
    int saved = errno;
    close(fd);
    errno = saved;
    return nullptr;
  }
  // The memfd is zero-filled; construct the non-payload part in place.
  auto* layout = new (mem) Layout;
  layout->header.magic = kMagic;
  layout->header.version = kVersion;
  layout->header.proxy_pid = static_cast<std::int32_t>(getpid());
  layout->header.data_bytes = kDataBytes;
  layout->header.proxy_start = process_start_time(getpid());
  *fd_out = fd;
  return layout;
}

Layout* attach(int fd, std::string* why) {
  void* mem = mmap(nullptr, kMappingBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) {
    *why = std::string("map the channel: ") + std::strerror(errno);
    return nullptr;
  }
  auto* layout = static_cast<Layout*>(mem);
  if (layout->header.magic != kMagic || layout->header.version != kVersion ||
      layout->header.data_bytes != kDataBytes) {
    *why = "the channel was made by another version of ferry-mpi-proxy";
    munmap(mem, kMappingBytes);
    return nullptr;
  }
  return layout;
}

std::uint64_t process_start_time(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return 0;
  ++p;
  for (int field = 2; field < 22 && *p != '\0'; ++p)
    if (*p == ' ') ++field;
  return std::strtoull(p, nullptr, 10);
}

void detach(Layout* layout) { munmap(layout, kMappingBytes); }

}  // namespace ferry::mpi::channel
