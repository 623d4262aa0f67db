// SPDX-License-Identifier: Apache-2.0
// capture() on real child programs (testdata/*.c) into an image::MemoryImage: memory patterns
// at the right addresses, AVX register state, fds and blobs, refusals that leave the child
// running, the interrupted-read rewind, resume and kill.
#include "capture.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "arch/x86_64/xsave.hpp"
#include "ferry/common/fs.hpp"
#include "ferry/image/memory_image.hpp"
#include "proc/maps.hpp"

namespace ferry::capture {
namespace {

// A child program with its stdin/stdout on pipes; killed and reaped by PID at the end.
struct Child {
  pid_t pid = -1;
  int in = -1, out = -1;  // our ends
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (in >= 0) ::close(in);
    if (out >= 0) ::close(out);
  }
  // Reads up to '\n' (bounded by 5 s).
  std::string line() {
    std::string s;
    while (s.size() < 4096) {
      pollfd p{out, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) break;
      char c;
      if (::read(out, &c, 1) != 1 || c == '\n') break;
      s += c;
    }
    return s;
  }
  // Sends one byte, expects byte+1 back within 5 s.
  bool ping(char c) {
    if (::write(in, &c, 1) != 1) return false;
    pollfd p{out, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    char r;
    return ::read(out, &r, 1) == 1 && r == c + 1;
  }
  bool alive() const { return ::waitpid(pid, nullptr, WNOHANG) == 0; }
};

void spawn(Child& c, std::vector<std::string> args) {
  int in[2], out[2];
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  c.pid = ::fork();
  ASSERT_GE(c.pid, 0);
  if (c.pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 2);
    ::syscall(SYS_close_range, 3, ~0u, 0);  // only what the test means the child to have
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  c.in = in[1];
  c.out = out[0];
}

// Bounded wait until the child sleeps (state S) in the kernel.
void wait_sleeping(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    auto st = fs::read_file("/proc/" + std::to_string(pid) + "/stat");
    if (st && st->find(") S ") != std::string::npos) return;
    ::usleep(10000);
  }
}

uint64_t field(const std::string& line, const std::string& key, int base = 16) {
  auto pos = line.find(key + "=");
  if (pos == std::string::npos) return 0;
  return std::stoull(line.substr(pos + key.size() + 1), nullptr, base);
}

const image::Region* region_at(const image::ProcessImage& img, uint64_t addr) {
  for (const auto& r : img.regions)
    if (r.start <= addr && addr < r.end) return &r;
  return nullptr;
}

const image::FdRecord* fd_rec(const image::ProcessImage& img, int fd) {
  for (const auto& f : img.fds)
    if (f.fd == fd) return &f;
  return nullptr;
}

TEST(Capture, PatternChildMemoryRegistersFilesAndBlobs) {
  char reg_path[] = "/tmp/ferry-capture-regular-XXXXXX";
  int tmp = ::mkstemp(reg_path);
  ASSERT_GE(tmp, 0);
  ASSERT_EQ(::write(tmp, "0123456789", 10), 10);
  ::close(tmp);
  struct Unlink {
    const char* p;
    ~Unlink() { ::unlink(p); }
  } unlink_reg{reg_path};
  std::string del_path = std::string(reg_path) + ".deleted";

  Child c;
  spawn(c, {FERRY_PATTERN_CHILD, reg_path, del_path});
  std::string line = c.line();
  ASSERT_NE(line.find("heap="), std::string::npos) << "child said: " << line;
  const uint64_t heap = field(line, "heap"), anon = field(line, "anon"), shared = field(line, "shared"),
                 ring = field(line, "ring"), shm = field(line, "shm");
  const int memfd = static_cast<int>(field(line, "memfd", 10)),
            regular = static_cast<int>(field(line, "regular", 10)),
            deleted = static_cast<int>(field(line, "deleted", 10));
  ::usleep(20000);  // let it reach the spin loop with ymm0 loaded

  auto frozen = FrozenProcess::freeze(c.pid);
  ASSERT_TRUE(frozen) << frozen.error().message();
  image::MemoryImage sink;
  CaptureOptions opts;
  opts.job = "job-1";
  opts.generation = 3;
  auto img = capture(*frozen, opts, sink);
  ASSERT_TRUE(img) << img.error().message();
  ASSERT_TRUE(frozen->resume());
  EXPECT_TRUE(c.alive());

  // Heap and anonymous patterns are in the page runs at their addresses.
  std::vector<uint32_t> words(64 * 1024 / 4);
  ASSERT_TRUE(sink.read_pages(heap & ~0xfffull, std::as_writable_bytes(std::span(words)).first(4096)));
  {
    std::vector<uint32_t> heap_words(64 * 1024 / 4);
    // The malloc'ed block is not page aligned: read the pages covering it.
    uint64_t first = heap & ~0xfffull, last = (heap + 64 * 1024 + 0xfff) & ~0xfffull;
    std::vector<std::byte> pages(last - first);
    ASSERT_TRUE(sink.read_pages(first, pages));
    std::memcpy(heap_words.data(), pages.data() + (heap - first), 64 * 1024);
    for (uint32_t i = 0; i < heap_words.size(); ++i) ASSERT_EQ(heap_words[i], 0xC0DE0000u + i) << i;
  }
  ASSERT_NE(region_at(*img, heap), nullptr);
  EXPECT_EQ(region_at(*img, heap)->kind, image::RegionKind::heap);
  {
    std::vector<uint32_t> a((1 << 20) / 4);
    ASSERT_TRUE(sink.read_pages(anon, std::as_writable_bytes(std::span(a))));
    for (uint32_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], 0x5EED0000u + i) << i;
    EXPECT_EQ(region_at(*img, anon)->kind, image::RegionKind::anon_private);
  }
  {
    char s[8] = {};
    ASSERT_TRUE(sink.read_pages(shared, std::as_writable_bytes(std::span(s)).first(8)));
    EXPECT_STREQ(s, "shared!");
    EXPECT_EQ(region_at(*img, shared)->kind, image::RegionKind::anon_shared);
  }
  // memfd: mapping and fd share one blob with the content.
  const auto* ring_r = region_at(*img, ring);
  ASSERT_NE(ring_r, nullptr);
  EXPECT_EQ(ring_r->kind, image::RegionKind::memfd_shared);
  ASSERT_GE(ring_r->blob, 0);
  const auto* mfd = fd_rec(*img, memfd);
  ASSERT_NE(mfd, nullptr);
  EXPECT_EQ(mfd->kind, image::FdKind::memfd);
  EXPECT_EQ(mfd->blob, ring_r->blob);
  {
    std::vector<char> b(8192);
    ASSERT_TRUE(sink.read_blob(static_cast<uint32_t>(ring_r->blob), 0, std::as_writable_bytes(std::span(b))));
    for (int i = 0; i < 8192; ++i) ASSERT_EQ(b[static_cast<size_t>(i)], static_cast<char>(i * 7)) << i;
  }
  // Deleted /dev/shm file mapped shared: blob.
  const auto* shm_r = region_at(*img, shm);
  ASSERT_NE(shm_r, nullptr);
  EXPECT_EQ(shm_r->kind, image::RegionKind::shm_shared);
  ASSERT_GE(shm_r->blob, 0);
  {
    char b[12] = {};
    ASSERT_TRUE(sink.read_blob(static_cast<uint32_t>(shm_r->blob), 0, std::as_writable_bytes(std::span(b))));
    EXPECT_STREQ(b, "in /dev/shm");
  }
  // Files.
  const auto* reg = fd_rec(*img, regular);
  ASSERT_NE(reg, nullptr);
  EXPECT_EQ(reg->kind, image::FdKind::regular);
  EXPECT_EQ(reg->offset, 5u);
  EXPECT_EQ(reg->file.path, reg_path);
  EXPECT_EQ(reg->file.size, 10u);
  EXPECT_EQ(reg->flags & O_ACCMODE, unsigned(O_RDWR));
  EXPECT_FALSE(reg->cloexec);
  const auto* del = fd_rec(*img, deleted);
  ASSERT_NE(del, nullptr);
  EXPECT_EQ(del->kind, image::FdKind::deleted);
  ASSERT_GE(del->blob, 0);
  {
    char b[16] = {};
    ASSERT_TRUE(sink.read_blob(static_cast<uint32_t>(del->blob), 0, std::as_writable_bytes(std::span(b)).first(15)));
    EXPECT_STREQ(b, "deleted content");
  }
  ASSERT_NE(fd_rec(*img, 0), nullptr);
  EXPECT_EQ(fd_rec(*img, 0)->kind, image::FdKind::inherit);  // pipe
  EXPECT_EQ(fd_rec(*img, 1)->kind, image::FdKind::inherit);  // pipe
  EXPECT_EQ(fd_rec(*img, 2)->kind, image::FdKind::inherit);  // /dev/null

  // Registers: ymm0 = 0x11..0x30 (xmm0 at +160 in the legacy area, upper half at +576).
  ASSERT_EQ(img->threads.size(), 1u);
  const auto& th = img->threads[0];
  ASSERT_GE(th.xsave.size(), 576u + 256u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(th.xsave[160 + static_cast<size_t>(i)], 0x11 + i) << i;
  EXPECT_TRUE(arch::xstate_bv(th.xsave) & arch::kXfeatAvx);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(th.xsave[576 + static_cast<size_t>(i)], 0x11 + 16 + i) << i;
  EXPECT_EQ(th.tid, c.pid);
  EXPECT_NE(th.regs[16], 0u);  // rip
  EXPECT_EQ(th.regs[17], 0x33u);  // cs
  EXPECT_NE(th.clear_tid_addr, 0u);  // glibc registers set_tid_address
  EXPECT_NE(th.robust_list, 0u);
  EXPECT_EQ(th.altstack_flags, SS_DISABLE);
  EXPECT_EQ(img->signals.size(), 62u);
  // Dispositions (queried by a loop run in the process): the target's SIGUSR1 handler with its
  // flags and mask, SIGPIPE ignored, the rest default.
  for (const auto& a : img->signals) {
    if (a.signo == SIGUSR1) {
      EXPECT_GT(a.handler, 1u);
      EXPECT_EQ(a.flags & (SA_RESTART | SA_NODEFER), static_cast<uint64_t>(SA_RESTART | SA_NODEFER));
      EXPECT_EQ(a.mask, uint64_t{1} << (SIGUSR2 - 1));
    } else if (a.signo == SIGPIPE) {
      EXPECT_EQ(a.handler, 1u);  // SIG_IGN
    } else if (a.signo != 32 && a.signo != 33) {  // glibc's own
      EXPECT_EQ(a.handler, 0u) << "signal " << a.signo;
    }
  }

  // Header and identities.
  const auto& h = img->header;
  EXPECT_EQ(h.abi, "x86_64");
  EXPECT_EQ(h.pid, c.pid);
  EXPECT_EQ(h.job, "job-1");
  EXPECT_EQ(h.generation, 3u);
  EXPECT_EQ(h.vdso_hash.size(), 32u);
  EXPECT_EQ(h.xsave_size, th.xsave.size());
  EXPECT_EQ(h.xfeatures, arch::xstate_bv(th.xsave));
  EXPECT_NE(h.cpu_xcr0, 0u);
  EXPECT_EQ(h.record_kinds & (image::kRecMemory | image::kRecThreads | image::kRecFiles |
                              image::kRecMappedFiles | image::kRecBlobs),
            image::kRecMemory | image::kRecThreads | image::kRecFiles | image::kRecMappedFiles |
                image::kRecBlobs);
  bool libc = false;
  for (const auto& f : img->mapped_files)
    if (f.path.find("libc.so") != std::string::npos) {
      libc = true;
      EXPECT_EQ(f.hash.size(), 32u);
      EXPECT_GT(f.size, 0u);
    }
  EXPECT_TRUE(libc);
  // Read-only text is identity only: no page run inside an r-x file mapping.
  for (const auto& r : img->regions) {
    if (r.kind != image::RegionKind::file_private || (r.prot & PROT_WRITE)) continue;
    if (!(r.prot & PROT_EXEC)) continue;
    for (const auto& run : img->page_runs)
      EXPECT_FALSE(run.addr < r.end && run.addr + run.npages * 4096 > r.start) << r.name;
  }
  EXPECT_EQ(img->process.argv.at(1), reg_path);
  EXPECT_EQ(img->process.exe, FERRY_PATTERN_CHILD);
  EXPECT_NE(img->process.brk, 0u);
  EXPECT_GE(img->process.brk, img->process.start_brk);
  EXPECT_FALSE(img->process.auxv.empty());
  EXPECT_EQ(img->process.rlimits.size(), 16u);

  // The scratch page of the injected calls is gone and not in the image: regions == live maps.
  auto maps = proc::read_maps(c.pid);
  ASSERT_TRUE(maps);
  ASSERT_EQ(maps->size(), img->regions.size());
  for (size_t i = 0; i < maps->size(); ++i) EXPECT_EQ((*maps)[i].start, img->regions[i].start);

  // A second capture hits the hash cache and gives the same identities.
  {
    auto f2 = FrozenProcess::freeze(c.pid);
    ASSERT_TRUE(f2) << f2.error().message();
    image::MemoryImage sink2;
    auto img2 = capture(*f2, opts, sink2);
    ASSERT_TRUE(img2) << img2.error().message();
    ASSERT_EQ(img2->mapped_files.size(), img->mapped_files.size());
    for (size_t i = 0; i < img2->mapped_files.size(); ++i)
      EXPECT_EQ(img2->mapped_files[i].hash, img->mapped_files[i].hash);
  }  // destructor resumes
  EXPECT_TRUE(c.alive());
}

TEST(Capture, SocketIsRefusedAndChildKeepsRunning) {
  Child c;
  spawn(c, {FERRY_ECHO_CHILD, "--socket"});
  ASSERT_EQ(c.line(), "ready");
  auto frozen = FrozenProcess::freeze(c.pid);
  ASSERT_TRUE(frozen) << frozen.error().message();
  image::MemoryImage sink;
  auto img = capture(*frozen, {}, sink);
  ASSERT_FALSE(img);
  EXPECT_TRUE(img.error().is(errc::unsupported));
  EXPECT_NE(img.error().message().find("fd 3"), std::string::npos) << img.error().message();
  EXPECT_NE(img.error().message().find("socket"), std::string::npos) << img.error().message();
  EXPECT_NE(img.error().message().find(std::to_string(c.pid)), std::string::npos);
  EXPECT_TRUE(sink.image().page_runs.empty()) << "nothing may be written before a refusal";
  ASSERT_TRUE(frozen->resume());
  EXPECT_TRUE(c.ping('a'));
  EXPECT_TRUE(c.ping('q'));
}

TEST(Capture, ChildProcessesAreRefused) {
  Child c;
  spawn(c, {FERRY_ECHO_CHILD, "--fork"});
  ASSERT_EQ(c.line(), "ready");
  auto frozen = FrozenProcess::freeze(c.pid);
  ASSERT_TRUE(frozen) << frozen.error().message();
  image::MemoryImage sink;
  auto img = capture(*frozen, {}, sink);
  ASSERT_FALSE(img);
  EXPECT_TRUE(img.error().is(errc::unsupported));
  EXPECT_NE(img.error().message().find("child processes"), std::string::npos) << img.error().message();
  ASSERT_TRUE(frozen->resume());
  EXPECT_TRUE(c.ping('k'));
  // Stop the grandchild by PID too (it also dies with its parent via PR_SET_PDEATHSIG).
  auto kids = fs::read_file("/proc/" + std::to_string(c.pid) + "/task/" + std::to_string(c.pid) + "/children");
  ASSERT_TRUE(kids);
  std::istringstream ks(*kids);
  for (pid_t k; ks >> k;) ::kill(k, SIGKILL);
}

TEST(Capture, BlockedReadIsStoredRewoundAndContinuesAfterResume) {
  Child c;
  spawn(c, {FERRY_ECHO_CHILD});
  ASSERT_EQ(c.line(), "ready");
  wait_sleeping(c.pid);
  auto frozen = FrozenProcess::freeze(c.pid);
  ASSERT_TRUE(frozen) << frozen.error().message();
  auto live = frozen->leader().get_regs();
  ASSERT_TRUE(live);
  EXPECT_EQ(static_cast<int64_t>(live->rax), -512);
  image::MemoryImage sink;
  auto img = capture(*frozen, {}, sink);
  ASSERT_TRUE(img) << img.error().message();
  const auto& regs = img->threads.at(0).regs;
  EXPECT_EQ(regs[10], 0u);                // rax = SYS_read
  EXPECT_EQ(regs[15], ~0ull);             // orig_rax = -1
  EXPECT_EQ(regs[16], live->rip - 2);     // rip on the syscall instruction
  unsigned char insn[2] = {};
  ASSERT_TRUE(frozen->leader().read_memory(regs[16], std::as_writable_bytes(std::span(insn))));
  EXPECT_EQ(insn[0], 0x0f);
  EXPECT_EQ(insn[1], 0x05);
  // The live thread is left as the kernel itself would resume it from a stop (the restart
  // applied: back on the syscall instruction with rax = SYS_read), and answers after resume.
  auto after = frozen->leader().get_regs();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->rip, live->rip - 2);
  EXPECT_EQ(after->rax, 0u);
  EXPECT_EQ(after->rdi, live->rdi);
  ASSERT_TRUE(frozen->resume());
  EXPECT_TRUE(c.ping('x'));
}

TEST(Capture, KillEndsTheFrozenProcess) {
  Child c;
  spawn(c, {FERRY_ECHO_CHILD});
  ASSERT_EQ(c.line(), "ready");
  auto frozen = FrozenProcess::freeze(c.pid);
  ASSERT_TRUE(frozen);
  ASSERT_TRUE(frozen->kill());
  int status = 0;
  ASSERT_EQ(::waitpid(c.pid, &status, 0), c.pid);
  c.pid = -1;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
}

TEST(Capture, FreezeRefusesMissingProcess) {
  auto f = FrozenProcess::freeze(999999);
  ASSERT_FALSE(f);
  EXPECT_TRUE(f.error().is(errc::process_gone)) << f.error().message();
}

}  // namespace
}  // namespace ferry::capture
