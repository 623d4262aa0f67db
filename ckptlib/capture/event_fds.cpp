// SPDX-License-Identifier: Apache-2.0
// eventfd / timerfd / signalfd / epoll capture from /proc/PID/fdinfo (see event_fds.hpp).
// fdinfo formats (fs/eventfd.c, fs/timerfd.c, fs/signalfd.c, fs/eventpoll.c, Linux 6.x):
//   eventfd-count: %16llx (hex)   eventfd-semaphore: %d
//   clockid: %d  ticks: %llu  settime flags: 0%o  it_value: (%llu, %llu)  it_interval: (...)
//   sigmask:\t%016llx
//   tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x
#include "event_fds.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <charconv>
#include <string>

#include "ferry/common/fs.hpp"
#include "proc/fds.hpp"
#include "proc/text.hpp"

namespace ferry::capture {

namespace {

using proc::parse_num;
using proc::trim;

// "(4, 952970275)" -> nanoseconds
bool parse_pair_ns(std::string_view s, int64_t& ns) {
  s = trim(s);
  if (s.size() < 5 || s.front() != '(' || s.back() != ')') return false;
  s = s.substr(1, s.size() - 2);
  size_t comma = s.find(',');
  if (comma == std::string_view::npos) return false;
  int64_t sec = 0, nsec = 0;
  if (!parse_num(s.substr(0, comma), sec, 10) || !parse_num(s.substr(comma + 1), nsec, 10)) return false;
  ns = sec * 1000000000 + nsec;
  return true;
}

// Value after "key:" inside a line with several "key: value" pairs (the tfd line).
std::string_view field(std::string_view line, std::string_view key) {
  size_t p = line.find(key);
  if (p == std::string_view::npos) return {};
  std::string_view rest = line.substr(p + key.size());
  size_t b = rest.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  rest.remove_prefix(b);
  return rest.substr(0, rest.find_first_of(" \t"));
}

}  // namespace

bool is_event_fd_kind(std::string_view k) noexcept {
  return k == "eventfd" || k == "timerfd" || k == "signalfd" || k == "eventpoll";
}

Result<void> parse_event_fdinfo(std::string_view anon_kind, std::string_view text,
                                image::EventFd& out, std::vector<image::EpollTarget>& targets,
                                std::vector<uint64_t>& inos) {
  using image::EventFdKind;
  if (anon_kind == "eventfd") out.kind = EventFdKind::eventfd;
  else if (anon_kind == "timerfd") out.kind = EventFdKind::timerfd;
  else if (anon_kind == "signalfd") out.kind = EventFdKind::signalfd;
  else if (anon_kind == "eventpoll") out.kind = EventFdKind::epoll;
  else return fail(errc::unsupported, "parse fdinfo: anon inode kind " + std::string(anon_kind));
  FERRY_TRY(base, proc::parse_fdinfo(text));
  out.flags = base.flags & ~static_cast<uint32_t>(O_CLOEXEC);
  out.cloexec = (base.flags & O_CLOEXEC) != 0;
  bool have_main = out.kind == EventFdKind::epoll;  // an empty epoll set has no extra lines
  bool have_value = false, have_interval = false;
  proc::Field f;
  while (proc::next_field(text, f)) {
    std::string_view line = f.line, key = f.key, val = f.value;
    bool ok = true;
    switch (out.kind) {
      case EventFdKind::eventfd:
        if (key == "eventfd-count") ok = have_main = parse_num(val, out.count, 16);
        else if (key == "eventfd-semaphore") ok = parse_num(val, out.mode, 10);
        break;
      case EventFdKind::timerfd:
        if (key == "clockid") ok = have_main = parse_num(val, out.clockid, 10);
        else if (key == "ticks") ok = parse_num(val, out.count, 10);
        else if (key == "settime flags") ok = parse_num(val, out.mode, 8);
        else if (key == "it_value") ok = have_value = parse_pair_ns(val, out.value_ns);
        else if (key == "it_interval") ok = have_interval = parse_pair_ns(val, out.interval_ns);
        break;
      case EventFdKind::signalfd:
        if (key == "sigmask") ok = have_main = parse_num(val, out.sigmask, 16);
        break;
      case EventFdKind::epoll:
        if (key == "tfd") {
          image::EpollTarget t;
          t.epfd = out.fd;
          uint64_t ino = 0;
          ok = parse_num(val.substr(0, val.find("events")), t.fd, 10) &&
               parse_num(field(line, "events:"), t.events, 16) &&
               parse_num(field(line, "data:"), t.data, 16) && parse_num(field(line, "ino:"), ino, 16);
          if (ok) {
            targets.push_back(t);
            inos.push_back(ino);
          }
        }
        break;
    }
    if (!ok) return fail(errc::protocol, "parse fdinfo line '" + std::string(line) + "'");
  }
  if (!have_main || (out.kind == EventFdKind::timerfd && !(have_value && have_interval)))
    return fail(errc::protocol, "parse fdinfo of " + std::string(anon_kind) + ": fields missing");
  return {};
}

Result<EventFdPlan> plan_event_fds(pid_t pid) {
  const std::string who = "process " + std::to_string(pid);
  const std::string base = "/proc/" + std::to_string(pid);
  FERRY_TRY(links, proc::list_fds(pid));
  EventFdPlan plan;
  for (const auto& link : links) {
    constexpr std::string_view kAnon = "anon_inode:";
    if (link.target.rfind(kAnon, 0) != 0) continue;
    std::string k = link.target.substr(kAnon.size());
    if (!k.empty() && k.front() == '[') k = k.substr(1, k.size() - 2);
    if (!is_event_fd_kind(k)) continue;  // plan_fds refuses it
    FERRY_TRY(text, fs::read_file(base + "/fdinfo/" + std::to_string(link.fd)));
    image::EventFd e;
    e.fd = link.fd;
    std::vector<image::EpollTarget> targets;
    std::vector<uint64_t> inos;
    if (auto r = parse_event_fdinfo(k, text, e, targets, inos); !r)
      return fail(r.error().wrap("checkpoint " + who + ": fd " + std::to_string(link.fd)));
    for (size_t i = 0; i < targets.size(); ++i) {
      struct stat st {};
      std::string tpath = base + "/fd/" + std::to_string(targets[i].fd);
      if (::stat(tpath.c_str(), &st) != 0 || st.st_ino != inos[i])
        return fail(errc::unsupported,
                    "checkpoint " + who + ": fd " + std::to_string(link.fd) +
                        " is an epoll instance watching a file that is no longer open at fd " +
                        std::to_string(targets[i].fd) + " (closed or replaced since it was added), which is not supported");
      plan.targets.push_back(targets[i]);
    }
    plan.fds.push_back(e);
  }
  return plan;
}

}  // namespace ferry::capture
