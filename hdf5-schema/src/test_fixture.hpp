// SPDX-License-Identifier: Apache-2.0
// Test fixtures for the image tests: a ProcessImage with every field set, deterministic page
// contents, and a helper that writes an image to a temporary file.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ferry/image/writer.hpp"

namespace ferry::image::testing {

inline constexpr uint64_t kPage = 4096;

// Deterministic, incompressible-looking bytes: each 4 KiB page's content depends only on its
// own address, so a run filled in one call equals the same run filled piecewise.
inline void fill_pages(uint64_t addr, std::vector<std::byte>& buf) {
  for (size_t page = 0; page < buf.size(); page += kPage) {
    uint64_t x = (addr + page) * 0x9E3779B97F4A7C15ull + 1;
    size_t end = std::min(buf.size(), page + kPage);
    for (size_t i = page; i + 8 <= end; i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(buf.data() + i, &x, 8);
    }
  }
}

inline ProcessImage full_image() {
  ProcessImage im;
  ImageHeader& h = im.header;
  h.abi = "x86_64";
  h.xfeatures = 0xe7;
  h.cpu_xcr0 = 0x2e7;
  h.xsave_size = 2696;
  h.page_size = static_cast<uint32_t>(::sysconf(_SC_PAGESIZE));
  h.kernel = "6.1.0-18-amd64";
  h.host = "node042";
  h.job = "job-7";
  h.rank = 3;
  h.generation = 12;
  h.time_ns = 1700000000123456789;
  h.pid = 4242;
  h.ferry_version = "0.1.0";
  h.vdso_hash = "0123456789abcdef0123456789abcdef";

  ProcessInfo& p = im.process;
  p.exe = "/usr/bin/app";
  p.argv = {"app", "--steps", "100", "unicode: \xc3\xa9t\xc3\xa9", ""};
  p.comm = "app";
  p.cwd = "/home/u/run";
  p.umask = 027;
  p.personality = 0x0040000;
  p.rlimits = {{7, 1024, 4096}, {3, 8 << 20, ~uint64_t{0}}};
  p.start_code = 0x400000;
  p.end_code = 0x401000;
  p.start_data = 0x402000;
  p.end_data = 0x403000;
  p.start_brk = 0x500000;
  p.brk = 0x521000;
  p.start_stack = 0x7ffc0000f000;
  p.arg_start = 0x7ffc0000f100;
  p.arg_end = 0x7ffc0000f200;
  p.env_start = 0x7ffc0000f200;
  p.env_end = 0x7ffc0000ff00;
  p.auxv = {33, 0x7fff1000, 6, 4096, 0, 0};

  im.mapped_files = {{"/usr/lib/x86_64-linux-gnu/libc.so.6", 2049, 123456, 1922136,
                      1690000000000000000, "ffeeddccbbaa99887766554433221100"}};
  im.regions = {
      {0x400000, 0x401000, 5, 2, RegionKind::file_private, 0, 0, -1, "/usr/bin/app"},
      {0x500000, 0x521000, 3, 2, RegionKind::heap, 0, -1, -1, "[heap]"},
      {0x7f0000000000, 0x7f0004000000, 3, 0x22, RegionKind::anon_private, 0, -1, -1, ""},
      {0x7f1000000000, 0x7f1000010000, 3, 1, RegionKind::memfd_shared, 0, -1, 0,
       "/memfd:ring (deleted)"},
      {0x7ffc00000000, 0x7ffc00021000, 3, 0x122, RegionKind::stack, 0, -1, -1, "[stack]"},
  };
  Thread t;
  t.tid = 4242;
  for (size_t i = 0; i < t.regs.size(); ++i) t.regs[i] = 0x1111111111111111ull * (i % 15) + i;
  t.xsave.resize(h.xsave_size);
  for (size_t i = 0; i < t.xsave.size(); ++i) t.xsave[i] = static_cast<uint8_t>(i * 7);
  t.sigmask = 1ull << 9;
  t.altstack_sp = 0x7f2000000000;
  t.altstack_size = 65536;
  t.altstack_flags = 0;
  t.rseq_addr = 0x7f3000000020;
  t.rseq_len = 32;
  t.rseq_sig = 0x53053053;
  t.clear_tid_addr = 0x7f3000000990;
  t.robust_list = 0x7f30000009a0;
  t.robust_list_len = 24;
  im.threads = {t};
  im.signals = {{2, 0x401234, 0x04000000, 0x7f3000001000, 1ull << 1},
                {13, 1, 0, 0, 0},
                {10, 0x401300, 0x14000000, 0x7f3000001000, 0}};
  FdRecord fd3;
  fd3.fd = 3;
  fd3.kind = FdKind::regular;
  fd3.flags = 02 | 02000;
  fd3.cloexec = true;
  fd3.offset = 12345;
  fd3.mode = 0100644;
  fd3.file = {"/home/u/run/out.txt", 2049, 777, 12345, 1700000000000000000, ""};
  FdRecord fd4;
  fd4.fd = 4;
  fd4.kind = FdKind::memfd;
  fd4.flags = 02;
  fd4.offset = 0;
  fd4.mode = 0100777;
  fd4.file = {"/memfd:ring", 5, 99, 65536, 0, ""};
  fd4.blob = 0;
  im.fds = {fd3, fd4};
  im.self_checkpoint = SelfCheckpoint{0x7f3000002000};
  // 1.1 records
  im.clocks = Clocks{1700000000123456789, 98765432101, 98765432999};
  im.itimers = {{0, 250000000, 500000000}};
  im.posix_timers = {{0, 1, 0, 34, 0x1234, 0, 3000000, 10000000},
                     {2, 0, 4, 35, 7, 1001, 0, 0}};
  EventFd ev{5, EventFdKind::eventfd, 02 | 04000, true, 7, 1, 0, 0, 0, 0};
  EventFd tf{6, EventFdKind::timerfd, 02, false, 3, 0, 1, 4500000, 1000000000, 0};
  EventFd sf{7, EventFdKind::signalfd, 02, false, 0, 0, 0, 0, 0, 1ull << 9};
  EventFd ep{8, EventFdKind::epoll, 02, true, 0, 0, 0, 0, 0, 0};
  im.event_fds = {ev, tf, sf, ep};
  im.epoll_targets = {{8, 5, 0x80000001, 0xabc}, {8, 6, 1, 6}};
  PendingSignal ps;
  ps.tid = 0;
  ps.signo = 35;
  ps.code = -1;
  for (size_t i = 0; i < ps.siginfo.size(); ++i) ps.siginfo[i] = static_cast<uint8_t>(i * 3);
  PendingSignal pt = ps;
  pt.tid = 1001;
  pt.signo = 10;
  pt.code = -6;
  im.pending_signals = {ps, pt};
  // 1.2 records: a pipe whose 65536 buffered bytes are blob 0, two fds on it (one shared
  // description), a FIFO without bytes, a zombie child, a dup of fd 3.
  im.pipes = {{4242, "", 1048576, 65536, 0}, {4243, "/tmp/f.fifo", 65536, 0, -1}};
  im.pipe_ends = {{9, 4242, 0, 00, false}, {10, 4242, 1, 01 | 04000, true}, {11, 4243, 0, 02, false}};
  im.zombies = {{77, 3 << 8, 1000, 1000}, {78, 9, 1000, 1000}};
  im.shared_fds = {{3, 1000, 12}};
  // 1.4: an incremental image: pages kept in two earlier generations (outside the page runs).
  im.bases = {{3, "../gen-000003/rank-0.h5", 0x1234}, {7, "../gen-000007/rank-0.h5", 0x5678}};
  im.page_refs = {{0x7f0001000000, 16, 0}, {0x7f0002000000, 8, 1}};
  return im;
}

// A unique path under /tmp, removed at destruction.
// Flips one bit of the byte at `offset` of the file (a damaged image).
inline void flip_byte(const std::string& path, uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  unsigned char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(offset)), 1);
  c ^= 0x40;
  ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& tag) {
    path = "/tmp/ferry-image-test-" + std::to_string(::getpid()) + "-" + tag + ".h5";
  }
  ~TempFile() { std::remove(path.c_str()); }
};

}  // namespace ferry::image::testing
