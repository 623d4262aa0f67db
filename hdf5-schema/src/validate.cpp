// SPDX-License-Identifier: Apache-2.0
// validate_image(): ImageReader::open's structural checks, then cross-table consistency, then
// (deep) every chunk checksum; each check is recorded for `ferry inspect`.
#include "ferry/image/validate.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <set>

#include "ferry/image/names.hpp"

namespace ferry::image {

namespace {

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

Result<void> bad(const std::string& what) { return fail(errc::image_corrupt, what); }

Result<void> check_regions(const ProcessImage& im) {
  uint64_t ps = im.header.page_size ? im.header.page_size : 4096;
  int nmapped = static_cast<int>(im.mapped_files.size());
  int nblobs = static_cast<int>(im.blobs.size());
  for (size_t i = 0; i < im.regions.size(); ++i) {
    const Region& r = im.regions[i];
    std::string at = "region " + std::to_string(i) + " [" + hex(r.start) + "-" + hex(r.end) + ")";
    if (r.start >= r.end || r.start % ps || r.end % ps) return bad(at + " is empty or unaligned");
    if (i > 0 && im.regions[i - 1].end > r.start)
      return bad(at + " overlaps or precedes the previous region");
    if (static_cast<uint32_t>(r.kind) > static_cast<uint32_t>(RegionKind::vsyscall))
      return bad(at + " has unknown kind " + std::to_string(static_cast<uint32_t>(r.kind)));
    if (r.mapped_file < -1 || r.mapped_file >= nmapped)
      return bad(at + " refers to mapped file " + std::to_string(r.mapped_file));
    if (r.blob < -1 || r.blob >= nblobs) return bad(at + " refers to blob " + std::to_string(r.blob));
    bool file_kind = r.kind == RegionKind::file_private || r.kind == RegionKind::file_shared;
    if (file_kind && r.mapped_file < 0) return bad(at + " is file-backed but names no file");
    bool blob_kind = r.kind == RegionKind::shm_shared || r.kind == RegionKind::memfd_shared;
    if (blob_kind && r.blob < 0) return bad(at + " is shm/memfd but names no blob");
  }
  return {};
}

Result<void> check_runs_in_regions(const ProcessImage& im) {
  uint64_t ps = im.header.page_size ? im.header.page_size : 4096;
  const auto& regs = im.regions;
  for (const PageRun& run : im.page_runs) {
    uint64_t addr = run.addr, end = run.addr + run.npages * ps;
    auto it = std::upper_bound(regs.begin(), regs.end(), addr,
                               [](uint64_t a, const Region& r) { return a < r.start; });
    if (it != regs.begin()) --it;
    // Walk adjacent regions until the run is covered (a run may span touching regions).
    while (addr < end && it != regs.end() && it->start <= addr && addr < it->end) {
      addr = it->end;
      ++it;
    }
    if (addr < end)
      return bad("page run at " + hex(run.addr) + " (" + std::to_string(run.npages) +
                 " pages) is not inside the regions: " + hex(addr) + " is not mapped");
  }
  return {};
}

Result<void> check_threads(const ProcessImage& im) {
  if ((im.header.record_kinds & kRecThreads) && im.threads.empty()) return bad("no threads");
  std::set<int32_t> tids;
  for (const Thread& t : im.threads) {
    if (!tids.insert(t.tid).second) return bad("thread id " + std::to_string(t.tid) + " twice");
    if (t.xsave.size() != im.header.xsave_size)
      return bad("thread " + std::to_string(t.tid) + " XSAVE area is " +
                 std::to_string(t.xsave.size()) + " bytes, header says " +
                 std::to_string(im.header.xsave_size));
  }
  if (im.header.xfeatures & ~im.header.cpu_xcr0)
    return bad("XSAVE features in use " + hex(im.header.xfeatures) +
               " are not a subset of the checkpointing CPU's XCR0 " + hex(im.header.cpu_xcr0));
  return {};
}

Result<void> check_signals(const ProcessImage& im) {
  std::set<int32_t> seen;
  for (const SignalAction& s : im.signals) {
    if (s.signo < 1 || s.signo > 64) return bad("signal number " + std::to_string(s.signo));
    if (s.signo == 9 || s.signo == 19)
      return bad("a disposition for SIGKILL/SIGSTOP (" + std::to_string(s.signo) + ")");
    if (!seen.insert(s.signo).second) return bad("signal " + std::to_string(s.signo) + " twice");
  }
  return {};
}

Result<void> check_fds(const ProcessImage& im) {
  int nblobs = static_cast<int>(im.blobs.size());
  for (size_t i = 0; i < im.fds.size(); ++i) {
    const FdRecord& f = im.fds[i];
    std::string at = "fd " + std::to_string(f.fd);
    if (f.fd < 0) return bad(at + " is negative");
    if (i > 0 && im.fds[i - 1].fd >= f.fd) return bad(at + " is out of order or repeated");
    if (static_cast<uint32_t>(f.kind) > static_cast<uint32_t>(FdKind::directory))
      return bad(at + " has unknown kind " + std::to_string(static_cast<uint32_t>(f.kind)));
    if (f.blob < -1 || f.blob >= nblobs) return bad(at + " refers to blob " + std::to_string(f.blob));
    if ((f.kind == FdKind::deleted || f.kind == FdKind::memfd) && f.blob < 0)
      return bad(at + " keeps its content in a blob but names none");
  }
  return {};
}

// 1.2 records: pipes (blob references and sizes), pipe ends, zombies, shared fds.
Result<void> check_pipes_and_children(const ProcessImage& im) {
  std::set<int32_t> fds;
  for (const FdRecord& f : im.fds) fds.insert(f.fd);
  std::set<uint64_t> ids;
  for (const Pipe& p : im.pipes) {
    std::string at = "pipe " + std::to_string(p.id);
    if (!ids.insert(p.id).second) return bad(at + " twice");
    if (p.bytes > p.capacity) return bad(at + " holds more bytes than its capacity");
    if (p.blob < -1 || p.blob >= static_cast<int32_t>(im.blobs.size()))
      return bad(at + " refers to blob " + std::to_string(p.blob));
    if ((p.bytes > 0) != (p.blob >= 0)) return bad(at + ": bytes and blob disagree");
    if (p.blob >= 0 && im.blobs[static_cast<size_t>(p.blob)].size != p.bytes)
      return bad(at + " has " + std::to_string(p.bytes) + " bytes but its blob " +
                 std::to_string(im.blobs[static_cast<size_t>(p.blob)].size));
  }
  for (size_t i = 0; i < im.pipe_ends.size(); ++i) {
    const PipeEnd& e = im.pipe_ends[i];
    std::string at = "pipe end fd " + std::to_string(e.fd);
    if (e.fd < 0 || (i > 0 && im.pipe_ends[i - 1].fd >= e.fd)) return bad(at + " is negative, out of order or repeated");
    if (fds.count(e.fd)) return bad(at + " is also a file descriptor record");
  }
  for (size_t i = 0; i < im.zombies.size(); ++i)
    if (im.zombies[i].pid <= 0 || (i > 0 && im.zombies[i - 1].pid >= im.zombies[i].pid))
      return bad("zombie " + std::to_string(im.zombies[i].pid) + " is not positive, out of order or repeated");
  for (const SharedFd& s : im.shared_fds)
    if (!fds.count(s.fd) || s.source_fd < 0 || s.pid <= 0)
      return bad("shared fd " + std::to_string(s.fd) + " has no fd record or names no source");
  return {};
}

}  // namespace

Result<void> check_consistency(const ProcessImage& image, std::vector<ImageCheck>& checks) {
  struct Step {
    const char* name;
    std::function<Result<void>(const ProcessImage&)> fn;
  };
  const Step steps[] = {
      {"regions sorted, aligned, references in range", check_regions},
      {"page runs inside regions", check_runs_in_regions},
      {"threads and XSAVE features", check_threads},
      {"signal dispositions", check_signals},
      {"file descriptors", check_fds},
      {"pipes, zombies, shared fds", check_pipes_and_children},
  };
  for (const auto& s : steps) {
    auto r = s.fn(image);
    checks.push_back({s.name, r.has_value(), r ? std::string() : r.error().message()});
    if (!r) return r;
  }
  return {};
}

Result<ValidationReport> validate_image(const std::string& path, bool deep) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail_errno("validate image " + path);
  ValidationReport rep;
  rep.path = path;
  rep.deep = deep;
  auto reader = ImageReader::open(path, &rep.checks);
  if (!reader) {
    rep.error = reader.error();
    return rep;
  }
  if (auto r = check_consistency((*reader)->image(), rep.checks); !r) {
    rep.error = r.error().wrap("image " + path);
    return rep;
  }
  if (deep) {
    auto r = (*reader)->verify_all();
    std::string detail = std::to_string((*reader)->page_chunks()) + " page chunks, " +
                         std::to_string((*reader)->blob_chunks()) + " blob chunks";
    rep.checks.push_back({"chunk checksums (deep)", r.has_value(),
                          r ? detail : r.error().message()});
    if (!r) rep.error = r.error();
  }
  return rep;
}

}  // namespace ferry::image
