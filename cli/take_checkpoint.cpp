// SPDX-License-Identifier: Apache-2.0
// Algorithm (take_checkpoint): begin gen-N.partial -> freeze the job's whole process tree
// (capture::freeze_tree: every process stopped before any is captured) -> dump_frozen: capture
// the root into rank-0.h5 and each other process into proc-<pid>.h5 (pid in the job's
// namespace; the writer fsyncs each), write MANIFEST.json listing every image with
// pid/ppid/pgid/sid and the fds shared with the parent (atomic, fsynced) -> rename
// gen-N.partial to gen-N and fsync the job directory (the commit point) -> resume every process
// (or kill them, children first, with --stop). A crash or kill -9 before the rename leaves only
// a .partial directory, which no reader considers and the next checkpoint removes. A single
// process keeps exactly the old layout (rank-0.h5 only).
// With a snapshot (the default for a one-shot checkpoint, but with --stop or from
// ferry_checkpoint()): every process's
// state is captured and a copy-on-write snapshot of it forked (capture::capture_state) while
// the tree is frozen; then the tree resumes and the pages are written from the snapshots
// (capture::capture_pages); the pause is freeze to resume, not the whole write.
// Incremental (--incremental, single-process jobs): the supervisor keeps one IncrementalChain
// per job: a capture::DirtyTracker (a userfaultfd made in the process, held by this process)
// and the last committed generation it is in step with. When a previous generation is in
// step and the chain is shorter than FERRY_INCREMENTAL_MAX_CHAIN (default 16) the basis is
// read from that generation's image: its own page runs and its references (read_basis, before
// the freeze when it can). Last in the pause, after the snapshot fork (the root's
// CaptureOptions::before_resume): harvest (the pages written since that generation,
// re-protected in the same walk) into the basis, and arm (register regions new since); a
// harvest that fails there leaves the basis without tracked regions (every page written) and
// drops the tracker. Unchanged pages become references
// to the image holding them; the manifest lists the generations needed ("needs"). Any failure
// (or a checkpoint abandoned after the harvest) puts the chain out of step: the next checkpoint
// is full. A restart starts with no tracker: its first checkpoint is full. Process trees and
// coordinator rounds are always full.
// A coordinator round runs the same steps one by one (freeze_job, dump_frozen into
// gen-N.partial/rank-R, resume_frozen or kill_frozen); the coordinator does the commit.
#include "take_checkpoint.hpp"

#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <iostream>
#include <map>
#include <set>

#include "capture/capture.hpp"
#include "capture/dirty_tracker.hpp"
#include "ferry/common/fs.hpp"
#include "ferry/image/chain.hpp"
#include "ferry/image/image_io.hpp"
#include "ferry/image/reader.hpp"
#include "ferry/image/writer.hpp"
#include "manifest.hpp"

namespace ferry::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

void write_self_flag(FrozenJob& job, std::optional<uint64_t> addr, int32_t value) {
  if (!addr || job.tree.empty()) return;
  auto& root = job.tree.front().frozen;
  if (root.write_memory(*addr, std::as_bytes(std::span<const int32_t>(&value, 1)))) return;
  // Resumed early (snapshot): the ferry_checkpoint() call is still polling the word.
  iovec local{&value, sizeof value};
  iovec remote{reinterpret_cast<void*>(*addr), sizeof value};
  (void)::process_vm_writev(root.pid(), &local, 1, &remote, 1, 0);
}

bool snapshot_allowed() {
  const char* e = std::getenv("FERRY_CHECKPOINT_SNAPSHOT");
  return !(e && std::strcmp(e, "0") == 0);
}

// Dirty tracking of one job's process across the checkpoints of this supervisor.
struct IncrementalChain {
  pid_t pid = -1;
  std::optional<capture::DirtyTracker> tracker;
  uint64_t in_step_with = 0;  // committed generation the tracker's protection dates from; 0: none
  unsigned length = 0;        // incremental generations since the last full one
};

std::map<std::string, IncrementalChain>& chains() {
  static std::map<std::string, IncrementalChain> c;
  return c;
}

unsigned max_chain() {
  const char* e = std::getenv("FERRY_INCREMENTAL_MAX_CHAIN");
  long v = e ? std::strtol(e, nullptr, 10) : 16;
  return v > 0 ? static_cast<unsigned>(v) : 16;
}

// What generation `gen` (committed, one image `file`) holds: its own runs (a base named
// relative to a sibling generation directory) and its references (whose relative paths hold
// for the new sibling directory unchanged). The dirty pages are added while frozen.
Result<std::shared_ptr<capture::IncrementalBasis>> read_basis(const store::JobStore& store, const std::string& id,
                                                              uint64_t gen, const std::string& file) {
  const std::string dir = store.generation_dir(id, gen);
  FERRY_TRY(reader, image::ImageReader::open(dir + "/" + file));
  const image::ProcessImage& prev = reader->image();
  auto b = std::make_shared<capture::IncrementalBasis>();
  b->bases = prev.bases;
  b->sources = prev.page_refs;
  const auto self = static_cast<uint32_t>(b->bases.size());
  b->bases.push_back({gen, "../" + dir.substr(dir.rfind('/') + 1) + "/" + file, image::header_identity(prev.header)});
  for (const auto& r : prev.page_runs) b->sources.push_back({r.addr, r.npages, self});
  std::sort(b->sources.begin(), b->sources.end(),
            [](const image::PageRef& x, const image::PageRef& y) { return x.addr < y.addr; });
  return b;
}

// Before the freeze: the basis of the incremental image this checkpoint will probably write
// (an HDF5 open and a table read not spent frozen), or nullptr.
struct EarlyBasis {
  uint64_t gen = 0;
  std::shared_ptr<capture::IncrementalBasis> basis;
};
EarlyBasis read_basis_early(const store::JobStore& store, const store::JobRecord& job, const CheckpointRequest& req) {
  auto c = chains().find(job.id);
  if (c == chains().end() || !c->second.tracker || c->second.in_step_with == 0 || !req.incremental || req.full ||
      c->second.length + 1 > max_chain())
    return {};
  auto b = read_basis(store, job.id, c->second.in_step_with, "rank-0.h5");
  if (!b) return {};  // read again while frozen, where a failure is reported
  return {c->second.in_step_with, *b};
}

// While the job is frozen: the basis of an incremental image (nullptr: a full one), and in
// *harvest what advances the job's dirty tracking: the root's capture calls it last, still
// frozen (CaptureOptions::before_resume), and it fills the basis's tracked and written. Never
// fails the checkpoint: a problem only makes this one full, or writes every page of an
// incremental one when the harvest fails (reported on stderr either way).
std::shared_ptr<const capture::IncrementalBasis> prepare_incremental(const store::JobStore& store,
                                                                     const store::JobRecord& job, FrozenJob& frozen,
                                                                     const CheckpointRequest& req, EarlyBasis early,
                                                                     std::function<void()>* harvest) {
  auto& chain = chains()[job.id];
  const pid_t pid = frozen.tree.front().frozen.pid();
  if (chain.pid != pid) chain = IncrementalChain{pid, std::nullopt, 0, 0};
  const uint64_t base = chain.in_step_with;
  chain.in_step_with = 0;  // until this checkpoint commits
  if (frozen.tree.size() != 1 || (!chain.tracker && !req.incremental)) return nullptr;
  const std::string id = job.id;
  auto warn = [id](const Error& e, const char* then) {
    std::cerr << "ferry: job " << id << ": incremental checkpoint not possible, " << then << ": " << e.message() << "\n";
  };
  if (!chain.tracker) {
    auto t = capture::DirtyTracker::create(frozen.tree.front().frozen);
    if (!t) {
      warn(t.error(), "writing a full one");
      return nullptr;
    }
    chain.tracker.emplace(std::move(*t));
  }
  std::shared_ptr<capture::IncrementalBasis> basis;
  if (req.incremental && !req.full && base != 0 && chain.length + 1 <= max_chain()) {
    auto b = early.basis && early.gen == base ? Result<std::shared_ptr<capture::IncrementalBasis>>(early.basis)
                                               : read_basis(store, job.id, base, "rank-0.h5");
    if (b)
      basis = *b;
    else
      warn(b.error(), "writing a full one");
  }
  *harvest = [&chain, basis, pid, warn] {
    const auto t0 = Clock::now();
    auto dirty = chain.tracker->harvest();
    auto armed = chain.tracker->arm();
    if (const char* e = std::getenv("FERRY_WRITE_TRACE"); e && *e && std::strcmp(e, "0") != 0)
      std::fprintf(stderr, "ferry dirty pages of pid %d: harvested and tracked again in %.1f ms (frozen)\n", pid,
                   seconds_since(t0) * 1e3);
    if (!dirty || !armed) {
      // The basis keeps no tracked region: every page is written.
      warn(!dirty ? dirty.error() : armed.error(), "writing every page");
      chain.tracker.reset();
      return;
    }
    if (!basis) return;
    basis->tracked = std::move(dirty->tracked);
    basis->written = std::move(dirty->written);
    std::sort(basis->tracked.begin(), basis->tracked.end(), [](auto& x, auto& y) { return x.start < y.start; });
    std::sort(basis->written.begin(), basis->written.end(), [](auto& x, auto& y) { return x.start < y.start; });
  };
  return basis;
}

}  // namespace

Result<FrozenJob> freeze_job(pid_t pid) {
  capture::prehash_mapped_files(pid);  // while it still runs: its libraries are hashed once
  auto tree = capture::freeze_tree(pid);
  if (!tree) return fail(tree.error());
  return FrozenJob{std::move(*tree), Clock::now()};
}

Result<DumpOutcome> dump_frozen(FrozenJob& job, const DumpSpec& spec) {
  auto t0 = Clock::now();
  if (job.tree.empty()) return fail(errc::process_gone, "dump: no frozen process");
  const bool is_tree = job.tree.size() > 1;
  DumpOutcome out;
  store::Manifest m;
  std::vector<std::unique_ptr<image::ImageWriter>> writers;
  std::vector<capture::PendingCapture> pending;
  std::vector<std::string> names;
  for (size_t i = 0; i < job.tree.size(); ++i) {
    auto& member = job.tree[i];
    const std::string image_name =
        i == 0 ? "rank-" + std::to_string(spec.rank) + ".h5" : "proc-" + std::to_string(member.ids.pid) + ".h5";
    auto writer = image::ImageWriter::create(spec.dir + "/" + image_name);
    if (!writer) return fail(writer.error());
    capture::CaptureOptions opts;
    opts.job = spec.job;
    opts.rank = spec.rank;
    opts.generation = spec.generation;
    if (i == 0) opts.self_flag_addr = spec.self_flag_addr;
    opts.allow_children = is_tree;
    opts.snapshot = spec.snapshot;
    if (i == 0 && !is_tree) {
      opts.incremental = spec.incremental;
      opts.before_resume = spec.before_resume;
    }
    auto p = capture::capture_state(member.frozen, opts, **writer);
    if (!p) return fail(p.error());
    pending.push_back(std::move(*p));
    writers.push_back(std::move(*writer));
    names.push_back(image_name);
  }
  // Every process's state is captured: with a snapshot of each, the job runs on now.
  bool all_snapshots = spec.snapshot;
  for (const auto& p : pending) all_snapshots = all_snapshots && p.from_snapshot();
  if (all_snapshots) {
    FERRY_TRY_VOID(resume_frozen(job));
    out.resumed = true;
    out.pause_s = seconds_since(job.frozen_at);
  }
  for (size_t i = 0; i < job.tree.size(); ++i) {
    auto& member = job.tree[i];
    const std::string& image_name = names[i];
    auto img = capture::capture_pages(pending[i], out.resumed ? nullptr : &member.frozen);
    if (!img) {
      // The snapshot lives in the job's PID namespace: when the job ends during the write,
      // the namespace ends and takes the snapshot with it.
      if (out.resumed && ::kill(member.frozen.pid(), 0) != 0 && errno == ESRCH)
        return fail(errc::not_found, "the job ended while its checkpoint was being written (" +
                                         img.error().message() + "); nothing was committed");
      return fail(img.error());
    }
    auto& writer = writers[i];
    store::ManifestImage mi{spec.rank, image_name, 0, writer->bytes_written()};
    struct stat st {};
    if (::stat((spec.dir + "/" + image_name).c_str(), &st) == 0) mi.size = static_cast<uint64_t>(st.st_size);
    if (is_tree) {
      mi.pid = member.ids.pid;
      mi.ppid = member.ids.ppid;
      mi.pgid = member.ids.pgid;
      mi.sid = member.ids.sid;
      mi.shared_fds = member.shared_fds;
    }
    for (const auto& b : img->bases)
      if (std::find(m.needs.begin(), m.needs.end(), b.generation) == m.needs.end()) m.needs.push_back(b.generation);
    out.memory_bytes += mi.memory_bytes;
    out.image_bytes += mi.size;
    m.images.push_back(std::move(mi));
  }
  m.job = spec.job;
  m.generation = spec.generation;
  m.created_ns = now_ns();
  m.pause_ns = static_cast<int64_t>((out.resumed ? out.pause_s : seconds_since(job.frozen_at)) * 1e9);
  m.duration_ns = static_cast<int64_t>(seconds_since(spec.started) * 1e9);
  struct utsname u {};
  if (::uname(&u) == 0) m.host = u.nodename;
  // write_manifest fsyncs the manifest and `dir` (so the image entries are durable too);
  // the entry of `dir` in its parent is made durable here.
  FERRY_TRY_VOID(store::write_manifest(spec.dir, m));
  FERRY_TRY_VOID(fs::fsync_parent(spec.dir));
  out.seconds = seconds_since(t0);
  return out;
}

Result<void> resume_frozen(FrozenJob& job) {
  Result<void> first;
  for (auto& member : job.tree)
    if (auto r = member.frozen.resume(); !r && first) first = fail(r.error());
  return first;
}

Result<void> kill_frozen(FrozenJob& job) {
  for (size_t i = job.tree.size(); i-- > 0;)
    if (auto r = job.tree[i].frozen.kill(); !r) return fail(r.error());
  return {};
}

Result<CheckpointOutcome> take_checkpoint(const store::JobStore& store, const store::JobRecord& job,
                                          pid_t pid, const CheckpointRequest& req) {
  auto t0 = Clock::now();
  auto begun = store.begin_generation(job.id);
  if (!begun) return fail(begun.error().wrap("checkpoint job " + job.id));
  auto [gen, partial_dir] = *begun;
  auto abandon = [&](const Error& e) {
    store.abandon_generation(job.id, gen);
    return fail(e.wrap("checkpoint job " + job.id + " generation " + std::to_string(gen)));
  };

  EarlyBasis early = read_basis_early(store, job, req);
  auto frozen = freeze_job(pid);
  if (!frozen) return abandon(frozen.error());
  auto fail_frozen = [&](const Error& e) {
    write_self_flag(*frozen, req.self_flag_addr, image::kSelfFailed);
    return abandon(e);
  };

  DumpSpec spec;
  spec.dir = partial_dir;
  spec.job = job.id;
  spec.rank = 0;
  spec.generation = gen;
  spec.self_flag_addr = req.self_flag_addr;
  spec.started = t0;
  // No snapshot for --stop (the program must not run past the checkpoint) nor for a
  // ferry_checkpoint() call (the program waits for the whole checkpoint anyway, on a futex
  // that only a write while it is frozen wakes).
  spec.snapshot = req.snapshot && !req.stop && !req.self_flag_addr && snapshot_allowed();
  spec.incremental = prepare_incremental(store, job, *frozen, req, std::move(early), &spec.before_resume);
  auto dumped = dump_frozen(*frozen, spec);
  if (!dumped) return fail_frozen(dumped.error());
  auto committed = store.commit_generation(job.id, gen);
  if (!committed) return fail_frozen(committed.error());
  if (auto c = chains().find(job.id); c != chains().end() && c->second.tracker) {
    c->second.in_step_with = gen;
    c->second.length = spec.incremental ? c->second.length + 1 : 0;
  }
  if (req.keep > 0)
    if (auto p = store.prune_generations(job.id, req.keep); !p)
      std::cerr << "ferry: job " << job.id << ": " << p.error().message() << "\n";

  CheckpointOutcome out;
  out.incremental = spec.incremental != nullptr;
  out.generation = gen;
  out.dir = *committed;
  out.memory_bytes = dumped->memory_bytes;
  out.image_bytes = dumped->image_bytes;
  if (req.stop) {
    if (auto r = kill_frozen(*frozen); !r) return fail(r.error().wrap("stop job " + job.id + " after checkpoint"));
    out.stopped = true;
  } else {
    write_self_flag(*frozen, req.self_flag_addr, image::kSelfResumed);
    if (auto r = resume_frozen(*frozen); !r) return fail(r.error().wrap("resume job " + job.id));
  }
  out.pause_s = dumped->resumed ? dumped->pause_s : seconds_since(frozen->frozen_at);
  out.total_s = seconds_since(t0);
  return out;
}

}  // namespace ferry::cli
