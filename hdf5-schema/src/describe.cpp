// SPDX-License-Identifier: Apache-2.0
// Renders a ProcessImage and a ValidationReport as JSON and as compact human text.
#include "ferry/image/describe.hpp"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <sstream>

namespace ferry::image {

namespace {

using nlohmann::json;

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

// nlohmann's dump() throws on invalid UTF-8; paths and argv are arbitrary bytes, so replace
// every invalid sequence with U+FFFD before a string goes into JSON.
std::string utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
    if (ok && len == 2) ok = c >= 0xc2;  // no overlong encodings of ASCII
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

// Seconds with millisecond precision: "12.345s".
std::string ns_text(int64_t ns) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s%" PRId64 ".%03" PRId64 "s", ns < 0 ? "-" : "",
                (ns < 0 ? -ns : ns) / 1000000000, ((ns < 0 ? -ns : ns) % 1000000000) / 1000000);
  return buf;
}

std::string itimer_name(int32_t which) {
  switch (which) {
    case 0: return "ITIMER_REAL";
    case 1: return "ITIMER_VIRTUAL";
    case 2: return "ITIMER_PROF";
  }
  return "itimer" + std::to_string(which);
}

std::string human_bytes(uint64_t n) {
  static const char* units[] = {"B", "K", "M", "G", "T"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%" PRIu64 "B", n);
  else
    std::snprintf(buf, sizeof buf, "%.1f%s", v, units[u]);
  return buf;
}

std::string prot_string(uint32_t prot) {
  std::string s = "---";
  if (prot & 1) s[0] = 'r';
  if (prot & 2) s[1] = 'w';
  if (prot & 4) s[2] = 'x';
  return s;
}

std::string signal_name(int signo) {
  if (const char* a = ::sigabbrev_np(signo)) return std::string("SIG") + a;
  if (signo >= SIGRTMIN && signo <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(signo - SIGRTMIN);
  return "SIG" + std::to_string(signo);
}

std::string handler_name(uint64_t h) {
  if (h == 0) return "SIG_DFL";
  if (h == 1) return "SIG_IGN";
  return hex(h);
}

std::string rlimit_name(int r) {
  static const char* names[] = {"CPU",     "FSIZE", "DATA",  "STACK",      "CORE",    "RSS",
                                "NPROC",   "NOFILE", "MEMLOCK", "AS",      "LOCKS",   "SIGPENDING",
                                "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"};
  if (r >= 0 && r < 16) return names[r];
  return std::to_string(r);
}

std::string rlim_value(uint64_t v) { return v == ~uint64_t{0} ? "unlimited" : std::to_string(v); }

std::string open_flags(uint32_t f) {
  std::string s = (f & O_ACCMODE) == O_RDONLY ? "O_RDONLY"
                  : (f & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                                                : "O_RDWR";
  if (f & O_APPEND) s += "|O_APPEND";
  if (f & O_NONBLOCK) s += "|O_NONBLOCK";
  if (f & O_DIRECT) s += "|O_DIRECT";
  if (f & O_SYNC) s += "|O_SYNC";
  return s;
}

std::string iso_time(int64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm {};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(ns % 1000000000));
  return buf;
}

uint64_t page_size_of(const ProcessImage& im) {
  return im.header.page_size ? im.header.page_size : 4096;
}

// Bytes of page runs that fall inside each region (runs may span touching regions).
std::vector<uint64_t> stored_per_region(const ProcessImage& im) {
  std::vector<uint64_t> out(im.regions.size(), 0);
  uint64_t ps = page_size_of(im);
  for (const PageRun& run : im.page_runs) {
    uint64_t a = run.addr, e = run.addr + run.npages * ps;
    auto it = std::upper_bound(im.regions.begin(), im.regions.end(), a,
                               [](uint64_t x, const Region& r) { return x < r.start; });
    if (it != im.regions.begin()) --it;
    for (; it != im.regions.end() && it->start < e; ++it) {
      uint64_t lo = std::max(a, it->start), hi = std::min(e, it->end);
      if (lo < hi) out[static_cast<size_t>(it - im.regions.begin())] += hi - lo;
    }
  }
  return out;
}

// Bytes of [a, e) that fall inside each region, added to out.
void add_per_region(const ProcessImage& im, uint64_t a, uint64_t e, std::vector<uint64_t>& out) {
  auto it = std::upper_bound(im.regions.begin(), im.regions.end(), a,
                             [](uint64_t x, const Region& r) { return x < r.start; });
  if (it != im.regions.begin()) --it;
  for (; it != im.regions.end() && it->start < e; ++it) {
    uint64_t lo = std::max(a, it->start), hi = std::min(e, it->end);
    if (lo < hi) out[static_cast<size_t>(it - im.regions.begin())] += hi - lo;
  }
}

uint64_t page_bytes(const ProcessImage& im) {
  uint64_t n = 0;
  for (const auto& r : im.page_runs) n += r.npages * page_size_of(im);
  return n;
}
uint64_t blob_bytes(const ProcessImage& im) {
  uint64_t n = 0;
  for (const auto& b : im.blobs) n += b.size;
  return n;
}

// x86-64 register slots in Thread::regs (struct user_regs_struct order).
constexpr size_t kRax = 10, kRip = 16, kRsp = 19, kFsBase = 21, kOrigRax = 15;

json file_json(const FileIdentity& f) {
  return {{"path", utf8(f.path)}, {"dev", f.dev},       {"ino", f.ino},
          {"size", f.size},       {"mtime_ns", f.mtime_ns}, {"hash", utf8(f.hash)}};
}

json build_json(const ProcessImage& im) {
  const ImageHeader& h = im.header;
  json j;
  j["header"] = {{"schema_version", utf8(h.schema_version)},
                 {"record_kinds", h.record_kinds},
                 {"record_kind_names", record_kind_names(h.record_kinds)},
                 {"abi", utf8(h.abi)},
                 {"xfeatures", h.xfeatures},
                 {"xfeature_names", xfeature_names(h.xfeatures)},
                 {"cpu_xcr0", h.cpu_xcr0},
                 {"xsave_size", h.xsave_size},
                 {"page_size", h.page_size},
                 {"kernel", utf8(h.kernel)},
                 {"host", utf8(h.host)},
                 {"job", utf8(h.job)},
                 {"rank", h.rank},
                 {"generation", h.generation},
                 {"time_ns", h.time_ns},
                 {"time", iso_time(h.time_ns)},
                 {"pid", h.pid},
                 {"ferry_version", utf8(h.ferry_version)},
                 {"vdso_hash", utf8(h.vdso_hash)}};
  const ProcessInfo& p = im.process;
  json argv = json::array();
  for (const auto& a : p.argv) argv.push_back(utf8(a));
  json rl = json::array();
  for (const auto& r : p.rlimits)
    rl.push_back({{"resource", r.resource}, {"name", rlimit_name(r.resource)}, {"soft", r.soft},
                  {"hard", r.hard}});
  j["process"] = {{"exe", utf8(p.exe)},       {"argv", argv},
                  {"comm", utf8(p.comm)},     {"cwd", utf8(p.cwd)},
                  {"umask", p.umask},         {"personality", p.personality},
                  {"rlimits", rl},            {"start_code", p.start_code},
                  {"end_code", p.end_code},   {"start_data", p.start_data},
                  {"end_data", p.end_data},   {"start_brk", p.start_brk},
                  {"brk", p.brk},             {"start_stack", p.start_stack},
                  {"arg_start", p.arg_start}, {"arg_end", p.arg_end},
                  {"env_start", p.env_start}, {"env_end", p.env_end},
                  {"auxv", p.auxv}};
  auto stored = stored_per_region(im);
  json regions = json::array();
  for (size_t i = 0; i < im.regions.size(); ++i) {
    const Region& r = im.regions[i];
    regions.push_back({{"start", r.start},
                       {"end", r.end},
                       {"size", r.end - r.start},
                       {"prot", prot_string(r.prot)},
                       {"flags", r.flags},
                       {"kind", region_kind_name(r.kind)},
                       {"pgoff", r.pgoff},
                       {"mapped_file", r.mapped_file},
                       {"blob", r.blob},
                       {"stored_bytes", stored[i]},
                       {"name", utf8(r.name)}});
  }
  j["regions"] = regions;
  json runs = json::array();
  for (const auto& r : im.page_runs)
    runs.push_back({{"addr", r.addr}, {"npages", r.npages}, {"offset", r.offset}});
  j["page_runs"] = runs;
  if (!im.page_refs.empty()) {
    json bases = json::array(), refs = json::array();
    for (const auto& b : im.bases)
      bases.push_back({{"generation", b.generation}, {"path", utf8(b.path)}, {"header_xxh3", b.header_xxh3}});
    for (const auto& r : im.page_refs)
      refs.push_back({{"addr", r.addr}, {"npages", r.npages}, {"generation", im.bases[r.base].generation}});
    j["bases"] = bases;
    j["page_refs"] = refs;
  }
  json mf = json::array();
  for (const auto& f : im.mapped_files) mf.push_back(file_json(f));
  j["mapped_files"] = mf;
  json threads = json::array();
  for (const auto& t : im.threads)
    threads.push_back({{"tid", t.tid},
                       {"regs", t.regs},
                       {"rip", t.regs[kRip]},
                       {"rsp", t.regs[kRsp]},
                       {"fs_base", t.regs[kFsBase]},
                       {"xsave_bytes", t.xsave.size()},
                       {"sigmask", t.sigmask},
                       {"altstack_sp", t.altstack_sp},
                       {"altstack_size", t.altstack_size},
                       {"altstack_flags", t.altstack_flags},
                       {"rseq_addr", t.rseq_addr},
                       {"rseq_len", t.rseq_len},
                       {"rseq_sig", t.rseq_sig},
                       {"clear_tid_addr", t.clear_tid_addr},
                       {"robust_list", t.robust_list},
                       {"robust_list_len", t.robust_list_len}});
  j["threads"] = threads;
  json sigs = json::array();
  for (const auto& s : im.signals)
    sigs.push_back({{"signo", s.signo},
                    {"name", signal_name(s.signo)},
                    {"handler", s.handler},
                    {"handler_name", handler_name(s.handler)},
                    {"flags", s.flags},
                    {"restorer", s.restorer},
                    {"mask", s.mask}});
  j["signals"] = sigs;
  json fds = json::array();
  for (const auto& f : im.fds)
    fds.push_back({{"fd", f.fd},
                   {"kind", fd_kind_name(f.kind)},
                   {"flags", f.flags},
                   {"flag_names", open_flags(f.flags)},
                   {"cloexec", f.cloexec},
                   {"offset", f.offset},
                   {"mode", f.mode},
                   {"file", file_json(f.file)},
                   {"blob", f.blob}});
  j["fds"] = fds;
  json blobs = json::array();
  for (const auto& b : im.blobs)
    blobs.push_back({{"id", b.id}, {"size", b.size}, {"name", utf8(b.name)}});
  j["blobs"] = blobs;
  j["self_checkpoint"] =
      im.self_checkpoint ? json{{"flag_addr", im.self_checkpoint->flag_addr}} : json(nullptr);
  j["clocks"] = im.clocks ? json{{"realtime_ns", im.clocks->realtime_ns},
                                 {"monotonic_ns", im.clocks->monotonic_ns},
                                 {"boottime_ns", im.clocks->boottime_ns}}
                          : json(nullptr);
  json itimers = json::array();
  for (const auto& t : im.itimers)
    itimers.push_back({{"which", t.which}, {"name", itimer_name(t.which)},
                       {"value_ns", t.value_ns}, {"interval_ns", t.interval_ns}});
  j["itimers"] = itimers;
  json ptimers = json::array();
  for (const auto& t : im.posix_timers)
    ptimers.push_back({{"id", t.id}, {"clockid", t.clockid}, {"notify", t.notify},
                       {"signo", t.signo}, {"sigval", t.sigval}, {"notify_tid", t.notify_tid},
                       {"value_ns", t.value_ns}, {"interval_ns", t.interval_ns}});
  j["posix_timers"] = ptimers;
  json evfds = json::array();
  for (const auto& e : im.event_fds)
    evfds.push_back({{"fd", e.fd}, {"kind", event_fd_kind_name(e.kind)}, {"flags", e.flags},
                     {"cloexec", e.cloexec}, {"count", e.count}, {"mode", e.mode},
                     {"clockid", e.clockid}, {"value_ns", e.value_ns},
                     {"interval_ns", e.interval_ns}, {"sigmask", e.sigmask}});
  j["event_fds"] = evfds;
  json targets = json::array();
  for (const auto& t : im.epoll_targets)
    targets.push_back({{"epfd", t.epfd}, {"fd", t.fd}, {"events", t.events}, {"data", t.data}});
  j["epoll_targets"] = targets;
  json pending = json::array();
  for (const auto& p : im.pending_signals)
    pending.push_back({{"tid", p.tid}, {"signo", p.signo}, {"name", signal_name(p.signo)},
                       {"code", p.code}});
  j["pending_signals"] = pending;
  json pipes = json::array();
  for (const auto& p : im.pipes)
    pipes.push_back({{"id", p.id}, {"fifo_path", utf8(p.fifo_path)}, {"capacity", p.capacity},
                     {"bytes", p.bytes}, {"blob", p.blob}});
  j["pipes"] = pipes;
  json ends = json::array();
  for (const auto& e : im.pipe_ends)
    ends.push_back({{"fd", e.fd}, {"pipe", e.pipe}, {"desc", e.desc}, {"flags", e.flags},
                    {"cloexec", e.cloexec}});
  j["pipe_ends"] = ends;
  json zombies = json::array();
  for (const auto& z : im.zombies)
    zombies.push_back({{"pid", z.pid}, {"status", z.status}, {"pgid", z.pgid}, {"sid", z.sid}});
  j["zombies"] = zombies;
  json shared = json::array();
  for (const auto& sf : im.shared_fds)
    shared.push_back({{"fd", sf.fd}, {"pid", sf.pid}, {"source_fd", sf.source_fd}});
  j["shared_fds"] = shared;
  j["stored_bytes"] = {{"pages", page_bytes(im)},
                       {"blobs", blob_bytes(im)},
                       {"total", page_bytes(im) + blob_bytes(im)}};
  return j;
}

std::string build_text(const ProcessImage& im) {
  const ImageHeader& h = im.header;
  const ProcessInfo& p = im.process;
  std::ostringstream o;
  char line[512];
  o << "header\n";
  o << "  schema " << h.schema_version << "  abi " << h.abi << "  record kinds " << hex(h.record_kinds)
    << " (" << record_kind_names(h.record_kinds) << ")\n";
  o << "  job " << h.job << "  rank " << h.rank << "  generation " << h.generation << "  pid "
    << h.pid << "  host " << h.host << "  kernel " << h.kernel << "\n";
  o << "  taken " << iso_time(h.time_ns) << "  ferry " << h.ferry_version << "  page size "
    << h.page_size << "\n";
  o << "  cpu xcr0 " << hex(h.cpu_xcr0) << "; in use " << hex(h.xfeatures) << " ("
    << xfeature_names(h.xfeatures) << "); xsave area " << h.xsave_size << " bytes\n";
  o << "  vdso " << (h.vdso_hash.empty() ? "-" : h.vdso_hash) << "\n";

  o << "process\n";
  o << "  exe " << p.exe << "  comm " << p.comm << "\n  cwd " << p.cwd;
  std::snprintf(line, sizeof line, "  umask %04o  personality %s\n", p.umask,
                hex(p.personality).c_str());
  o << line << "  argv";
  for (const auto& a : p.argv) o << " " << (a.empty() ? "''" : a);
  o << "\n  brk " << hex(p.start_brk) << ".." << hex(p.brk) << "  code " << hex(p.start_code)
    << ".." << hex(p.end_code) << "  stack " << hex(p.start_stack) << "  auxv "
    << p.auxv.size() / 2 << " entries\n";
  if (!p.rlimits.empty()) {
    o << "  rlimits";
    for (const auto& r : p.rlimits)
      o << " " << rlimit_name(r.resource) << "=" << rlim_value(r.soft) << "/" << rlim_value(r.hard);
    o << "\n";
  }

  uint64_t mapped = 0;
  for (const auto& r : im.regions) mapped += r.end - r.start;
  auto stored = stored_per_region(im);
  o << "regions (" << im.regions.size() << ", " << human_bytes(mapped) << " mapped, "
    << human_bytes(page_bytes(im)) << " stored, page runs: " << im.page_runs.size() << ")\n";
  std::snprintf(line, sizeof line, "  %-16s %-16s %8s %-4s %-12s %8s  %s\n", "START", "END",
                "SIZE", "PROT", "KIND", "STORED", "NAME");
  o << line;
  for (size_t i = 0; i < im.regions.size(); ++i) {
    const Region& r = im.regions[i];
    std::string name = r.name;
    if (r.blob >= 0) name += "  [blob " + std::to_string(r.blob) + "]";
    std::snprintf(line, sizeof line, "  %016" PRIx64 " %016" PRIx64 " %8s %-4s %-12s %8s  %s\n",
                  r.start, r.end, human_bytes(r.end - r.start).c_str(),
                  (prot_string(r.prot) + ((r.flags & 1) ? "s" : "p")).c_str(),
                  region_kind_name(r.kind).c_str(), stored[i] ? human_bytes(stored[i]).c_str() : "-",
                  name.c_str());
    o << line;
  }

  if (!im.page_refs.empty()) {
    // Incremental image: where each region's pages come from.
    const uint64_t ps = page_size_of(im);
    std::vector<std::vector<uint64_t>> from(im.bases.size(), std::vector<uint64_t>(im.regions.size(), 0));
    std::vector<uint64_t> total(im.bases.size(), 0);
    for (const auto& r : im.page_refs) {
      add_per_region(im, r.addr, r.addr + r.npages * ps, from[r.base]);
      total[r.base] += r.npages * ps;
    }
    o << "incremental: generation " << im.header.generation << " holds " << human_bytes(page_bytes(im))
      << " of pages itself and refers to earlier generations for the rest\n";
    for (size_t b = 0; b < im.bases.size(); ++b)
      o << "  generation " << im.bases[b].generation << " (" << im.bases[b].path << "): " << human_bytes(total[b])
        << "\n";
    o << "pages by generation (regions with pages)\n";
    for (size_t i = 0; i < im.regions.size(); ++i) {
      std::string parts;
      if (stored[i]) parts += " gen " + std::to_string(im.header.generation) + ": " + human_bytes(stored[i]) + ";";
      for (size_t b = 0; b < im.bases.size(); ++b)
        if (from[b][i]) parts += " gen " + std::to_string(im.bases[b].generation) + ": " + human_bytes(from[b][i]) + ";";
      if (parts.empty()) continue;
      parts.pop_back();
      std::snprintf(line, sizeof line, "  %016" PRIx64 " %-24s", im.regions[i].start, im.regions[i].name.substr(0, 24).c_str());
      o << line << parts << "\n";
    }
  }

  o << "threads (" << im.threads.size() << ")\n";
  for (const auto& t : im.threads) {
    o << "  tid " << t.tid << "  rip " << hex(t.regs[kRip]) << "  rsp " << hex(t.regs[kRsp])
      << "  rax " << hex(t.regs[kRax]) << "  orig_rax " << hex(t.regs[kOrigRax]) << "  fs_base "
      << hex(t.regs[kFsBase]) << "\n";
    o << "    sigmask " << hex(t.sigmask) << "  xsave " << t.xsave.size() << " bytes  rseq "
      << (t.rseq_addr ? hex(t.rseq_addr) : "-") << "  altstack "
      << (t.altstack_size ? hex(t.altstack_sp) + "+" + std::to_string(t.altstack_size) : "-")
      << "\n";
  }

  o << "signals (" << im.signals.size() << ")\n";
  for (const auto& s : im.signals) {
    std::snprintf(line, sizeof line, "  %-12s %-16s flags %-10s mask %s\n",
                  signal_name(s.signo).c_str(), handler_name(s.handler).c_str(),
                  hex(s.flags).c_str(), hex(s.mask).c_str());
    o << line;
  }

  o << "files (" << im.fds.size() << ")\n";
  for (const auto& f : im.fds) {
    std::snprintf(line, sizeof line, "  %3d %-9s %-20s%s offset %-10" PRIu64 " %s", f.fd,
                  fd_kind_name(f.kind).c_str(), open_flags(f.flags).c_str(),
                  f.cloexec ? " cloexec" : "        ", f.offset, f.file.path.c_str());
    o << line;
    if (f.blob >= 0) o << "  [blob " << f.blob << "]";
    o << "\n";
  }
  o << "mapped files (" << im.mapped_files.size() << ")\n";
  for (size_t i = 0; i < im.mapped_files.size(); ++i) {
    const auto& f = im.mapped_files[i];
    o << "  " << i << " " << f.path << "  " << human_bytes(f.size) << "  ino " << f.ino
      << "  hash " << (f.hash.empty() ? "-" : f.hash) << "\n";
  }
  o << "blobs (" << im.blobs.size() << ", " << human_bytes(blob_bytes(im)) << ")\n";
  for (const auto& b : im.blobs)
    o << "  " << b.id << "  " << human_bytes(b.size) << "  " << b.name << "\n";
  if (im.self_checkpoint)
    o << "self checkpoint: flag word at " << hex(im.self_checkpoint->flag_addr) << "\n";
  if (im.clocks)
    o << "clocks at freeze: realtime " << ns_text(im.clocks->realtime_ns) << "  monotonic "
      << ns_text(im.clocks->monotonic_ns) << "  boottime " << ns_text(im.clocks->boottime_ns)
      << "\n";
  if (!im.itimers.empty() || !im.posix_timers.empty()) {
    o << "timers (" << im.itimers.size() + im.posix_timers.size() << ")\n";
    for (const auto& t : im.itimers)
      o << "  " << itimer_name(t.which) << "  next " << ns_text(t.value_ns) << "  every "
        << ns_text(t.interval_ns) << "\n";
    for (const auto& t : im.posix_timers)
      o << "  posix id " << t.id << " clock " << t.clockid << " notify " << t.notify << " "
        << signal_name(t.signo) << " value " << hex(t.sigval) << "  next " << ns_text(t.value_ns)
        << "  every " << ns_text(t.interval_ns) << "\n";
  }
  if (!im.event_fds.empty()) {
    o << "event fds (" << im.event_fds.size() << ")\n";
    for (const auto& e : im.event_fds) {
      o << "  " << e.fd << " " << event_fd_kind_name(e.kind) << " " << open_flags(e.flags)
        << (e.cloexec ? " cloexec" : "");
      switch (e.kind) {
        case EventFdKind::eventfd:
          o << "  count " << e.count << (e.mode ? " semaphore" : "");
          break;
        case EventFdKind::timerfd:
          o << "  clock " << e.clockid << " next " << ns_text(e.value_ns) << " every "
            << ns_text(e.interval_ns) << " ticks " << e.count;
          break;
        case EventFdKind::signalfd: o << "  mask " << hex(e.sigmask); break;
        case EventFdKind::epoll:
          for (const auto& t : im.epoll_targets)
            if (t.epfd == e.fd) o << "  [fd " << t.fd << " events " << hex(t.events) << "]";
          break;
      }
      o << "\n";
    }
  }
  if (!im.pending_signals.empty()) {
    o << "pending signals (" << im.pending_signals.size() << ")\n";
    for (const auto& p : im.pending_signals)
      o << "  " << (p.tid == 0 ? std::string("process") : "thread " + std::to_string(p.tid))
        << "  " << signal_name(p.signo) << "  si_code " << p.code << "\n";
  }
  if (!im.pipes.empty() || !im.pipe_ends.empty()) {
    o << "pipes (" << im.pipes.size() << " held here, " << im.pipe_ends.size() << " fds)\n";
    for (const auto& p : im.pipes)
      o << "  pipe:[" << p.id << "]" << (p.fifo_path.empty() ? "" : " fifo " + p.fifo_path)
        << "  capacity " << human_bytes(p.capacity) << "  buffered " << p.bytes << " bytes"
        << (p.blob >= 0 ? " (blob " + std::to_string(p.blob) + ")" : "") << "\n";
    for (const auto& e : im.pipe_ends)
      o << "  fd " << e.fd << " -> pipe:[" << e.pipe << "] description " << e.desc << " "
        << open_flags(e.flags) << (e.cloexec ? " cloexec" : "") << "\n";
  }
  if (!im.shared_fds.empty()) {
    o << "shared fds (" << im.shared_fds.size() << ")\n";
    for (const auto& sf : im.shared_fds)
      o << "  fd " << sf.fd << " = fd " << sf.source_fd << " of process " << sf.pid << "\n";
  }
  if (!im.zombies.empty()) {
    o << "zombie children (" << im.zombies.size() << ")\n";
    for (const auto& z : im.zombies) {
      o << "  pid " << z.pid << "  ";
      if ((z.status & 0x7f) == 0) o << "exited " << ((z.status >> 8) & 0xff);
      else o << "killed by " << signal_name(z.status & 0x7f);
      o << "  (wait status " << z.status << ")\n";
    }
  }
  o << "stored bytes: " << human_bytes(page_bytes(im) + blob_bytes(im)) << " ("
    << page_bytes(im) << " page bytes + " << blob_bytes(im) << " blob bytes)\n";
  return o.str();
}

}  // namespace

std::string region_kind_name(RegionKind kind) {
  switch (kind) {
    case RegionKind::anon_private: return "anon";
    case RegionKind::heap: return "heap";
    case RegionKind::stack: return "stack";
    case RegionKind::file_private: return "file";
    case RegionKind::file_shared: return "file_shared";
    case RegionKind::anon_shared: return "anon_shared";
    case RegionKind::shm_shared: return "shm";
    case RegionKind::memfd_shared: return "memfd";
    case RegionKind::vdso: return "vdso";
    case RegionKind::vvar: return "vvar";
    case RegionKind::vvar_vclock: return "vvar_vclock";
    case RegionKind::vsyscall: return "vsyscall";
  }
  return "kind" + std::to_string(static_cast<uint32_t>(kind));
}

std::string event_fd_kind_name(EventFdKind kind) {
  switch (kind) {
    case EventFdKind::eventfd: return "eventfd";
    case EventFdKind::timerfd: return "timerfd";
    case EventFdKind::signalfd: return "signalfd";
    case EventFdKind::epoll: return "epoll";
  }
  return "kind" + std::to_string(static_cast<uint32_t>(kind));
}

std::string fd_kind_name(FdKind kind) {
  switch (kind) {
    case FdKind::regular: return "regular";
    case FdKind::deleted: return "deleted";
    case FdKind::inherit: return "inherit";
    case FdKind::memfd: return "memfd";
    case FdKind::devnull: return "device";
    case FdKind::directory: return "directory";
  }
  return "kind" + std::to_string(static_cast<uint32_t>(kind));
}

std::string xfeature_names(uint64_t x) {
  static const char* names[] = {"x87",      "sse",       "avx",      "bndregs", "bndcsr",
                                "opmask",   "zmm_hi256", "hi16_zmm", "pt",      "pkru",
                                "pasid",    "cet_u",     "cet_s",    "hdc",     "uintr",
                                "lbr",      "hwp",       "xtilecfg", "xtiledata"};
  std::string s;
  for (unsigned b = 0; b < 64; ++b) {
    if (!(x & (uint64_t{1} << b))) continue;
    if (!s.empty()) s += ' ';
    s += b < std::size(names) ? names[b] : "bit" + std::to_string(b);
  }
  return s.empty() ? "none" : s;
}

std::string record_kind_names(uint64_t k) {
  static const char* names[] = {"memory",       "threads", "signals",         "files",
                                "mapped_files", "blobs",   "self_checkpoint", "clocks",
                                "timers",       "event_fds", "pending_signals", "pipes",
                                "zombies",      "shared_fds"};
  std::string s;
  for (unsigned b = 0; b < 64; ++b) {
    if (!(k & (uint64_t{1} << b))) continue;
    if (!s.empty()) s += ' ';
    s += b < std::size(names) ? names[b] : "unknown" + std::to_string(b);
  }
  return s.empty() ? "none" : s;
}

nlohmann::json to_json(const ProcessImage& image) {
  try {
    return build_json(image);
  } catch (const std::exception& e) {
    return json{{"error", std::string("describe image: ") + e.what()}};
  }
}

std::string to_text(const ProcessImage& image) {
  try {
    return build_text(image);
  } catch (const std::exception& e) {
    return std::string("describe image: ") + e.what() + "\n";
  }
}

nlohmann::json to_json(const ValidationReport& report) {
  try {
    json checks = json::array();
    for (const auto& c : report.checks)
      checks.push_back({{"name", utf8(c.name)}, {"ok", c.ok}, {"detail", utf8(c.detail)}});
    json j = {{"path", utf8(report.path)}, {"deep", report.deep}, {"ok", report.ok()},
              {"checks", checks}};
    if (report.error) {
      j["error"] = utf8(report.error->message());
      j["error_code"] = report.error->code().value();
      j["error_category"] = report.error->code().category().name();
    }
    return j;
  } catch (const std::exception& e) {
    return json{{"error", std::string("describe validation: ") + e.what()}};
  }
}

std::string to_text(const ValidationReport& report) {
  std::ostringstream o;
  o << "validation" << (report.deep ? " (deep)" : "") << ": " << (report.ok() ? "OK" : "FAILED")
    << "\n";
  for (const auto& c : report.checks) {
    o << "  [" << (c.ok ? " ok " : "FAIL") << "] " << c.name;
    if (!c.detail.empty()) o << ": " << c.detail;
    o << "\n";
  }
  if (report.error) o << "  error: " << report.error->message() << "\n";
  return o.str();
}

}  // namespace ferry::image
