// SPDX-License-Identifier: Apache-2.0
// stat/status/limits/auxv/cmdline/fdinfo parsers on fixtures, readers on this process.
#include "proc/task.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "ferry/common/fs.hpp"
#include "proc/fds.hpp"

namespace ferry::proc {
namespace {

std::string fixture(const char* name) {
  auto t = fs::read_file(std::string(FERRY_PROC_TESTDATA) + "/" + name);
  EXPECT_TRUE(t) << name;
  return t ? *t : std::string();
}

TEST(Stat, ParsesMmFieldsWithAWeirdComm) {
  auto s = parse_stat(fixture("stat.txt"));
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->pid, 6893);
  EXPECT_EQ(s->comm, "a (weird) prog");
  EXPECT_EQ(s->state, 'S');
  EXPECT_EQ(s->ppid, 6891);
  EXPECT_EQ(s->num_threads, 1);
  EXPECT_EQ(s->start_code, 93964784205824u);
  EXPECT_EQ(s->end_code, 93964784223753u);
  EXPECT_EQ(s->start_stack, 140734634516000u);
  EXPECT_EQ(s->start_data, 93964784237840u);
  EXPECT_EQ(s->end_data, 93964784239104u);
  EXPECT_EQ(s->start_brk, 93965211443200u);
  EXPECT_EQ(s->arg_start, 140734634523085u);
  EXPECT_EQ(s->arg_end, 140734634523095u);
  EXPECT_EQ(s->env_start, 140734634523095u);
  EXPECT_EQ(s->env_end, 140734634524649u);
  EXPECT_FALSE(parse_stat("12 (x) S 1 2 3"));
  auto live = read_stat(::getpid());
  ASSERT_TRUE(live) << live.error().message();
  EXPECT_EQ(live->pid, ::getpid());
}

TEST(Status, ParsesFields) {
  auto s = parse_status(fixture("status.txt"));
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->umask, 027u);
  EXPECT_EQ(s->tgid, 6893);
  EXPECT_EQ(s->ppid, 6891);
  EXPECT_EQ(s->tracer_pid, 4242);
  EXPECT_EQ(s->threads, 3u);
}

TEST(Limits, TextAndPrlimitAgree) {
  auto l = parse_limits(fixture("limits.txt"));
  ASSERT_TRUE(l) << l.error().message();
  ASSERT_EQ(l->size(), 16u);
  EXPECT_EQ((*l)[RLIMIT_STACK].soft, 8388608u);
  EXPECT_EQ((*l)[RLIMIT_STACK].hard, ~0ull);
  EXPECT_EQ((*l)[RLIMIT_NOFILE].soft, 1024u);
  EXPECT_EQ((*l)[RLIMIT_NOFILE].hard, 20000u);
  EXPECT_EQ((*l)[RLIMIT_RTTIME].resource, RLIMIT_RTTIME);
  auto text = fs::read_file("/proc/self/limits");
  ASSERT_TRUE(text);
  auto parsed = parse_limits(*text);
  auto exact = read_rlimits(::getpid());
  ASSERT_TRUE(parsed && exact);
  ASSERT_EQ(parsed->size(), exact->size());
  for (size_t i = 0; i < exact->size(); ++i) {
    EXPECT_EQ((*parsed)[i].soft, (*exact)[i].soft) << i;
    EXPECT_EQ((*parsed)[i].hard, (*exact)[i].hard) << i;
  }
}

TEST(Auxv, ReadsOwnAuxvWithPageSize) {
  auto a = read_auxv(::getpid());
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_GE(a->size(), 2u);
  EXPECT_EQ(a->at(a->size() - 2), 0u);
  bool pagesz = false;
  for (size_t i = 0; i + 1 < a->size(); i += 2)
    if ((*a)[i] == 6 /* AT_PAGESZ */) pagesz = (*a)[i + 1] == static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  EXPECT_TRUE(pagesz);
  EXPECT_FALSE(parse_auxv(std::string(24, '\1')));
}

TEST(Cmdline, SplitsOnNul) {
  EXPECT_EQ(parse_cmdline(std::string("a\0b c\0\0", 7)), (std::vector<std::string>{"a", "b c", ""}));
  EXPECT_EQ(parse_children("12 34 \n"), (std::vector<pid_t>{12, 34}));
  auto own = read_children(::getpid());
  ASSERT_TRUE(own) << own.error().message();
  EXPECT_TRUE(own->empty());
}

TEST(Fds, FdinfoFixtureAndLive) {
  auto fi = parse_fdinfo(fixture("fdinfo.txt"));
  ASSERT_TRUE(fi) << fi.error().message();
  EXPECT_EQ(fi->pos, 4096u);
  EXPECT_EQ(fi->flags, 02102002u);  // O_CLOEXEC | O_LARGEFILE | O_APPEND | O_RDWR
  EXPECT_EQ(fi->ino, 1234u);
  EXPECT_FALSE(parse_fdinfo("mnt_id: 3\n"));

  int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  char buf[100];
  ASSERT_EQ(::read(fd, buf, sizeof buf), ssize_t(sizeof buf));
  auto live = read_fdinfo(::getpid(), fd);
  ASSERT_TRUE(live) << live.error().message();
  EXPECT_EQ(live->pos, 100u);
  EXPECT_TRUE(live->flags & O_CLOEXEC);
  auto fds = list_fds(::getpid());
  ASSERT_TRUE(fds);
  bool found = false;
  for (const auto& l : *fds) found |= l.fd == fd;
  EXPECT_TRUE(found);
  ::close(fd);
}

}  // namespace
}  // namespace ferry::proc
