// SPDX-License-Identifier: Apache-2.0
// Algorithm: begin gen-N.partial -> freeze the job's whole process tree (capture::freeze_tree:
// every process stopped before any is captured) -> capture the root into rank-0.h5 and each
// other process into proc-<pid>.h5 (pid in the job's namespace; the writer fsyncs each) ->
// write MANIFEST.json listing every image with pid/ppid/pgid/sid and the fds shared with the
// parent (atomic, fsynced) -> rename gen-N.partial to gen-N and fsync the job directory (the
// commit point) -> resume every process (or kill them, children first, with --stop). A crash or
// kill -9 before the rename leaves only a .partial directory, which no reader considers and
// the next checkpoint removes. A single process keeps exactly the old layout (rank-0.h5 only).
#include "take_checkpoint.hpp"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>

#include "capture/capture.hpp"
#include "capture/process_tree.hpp"
#include "ferry/image/image_io.hpp"
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

void write_self_flag(capture::FrozenProcess& frozen, const CheckpointRequest& req, int32_t value) {
  if (!req.self_flag_addr) return;
  (void)frozen.write_memory(*req.self_flag_addr,
                            std::as_bytes(std::span<const int32_t>(&value, 1)));
}

}  // namespace

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

  auto tree = capture::freeze_tree(pid);
  if (!tree) return abandon(tree.error());
  auto t_frozen = Clock::now();
  capture::FrozenProcess& root = tree->front().frozen;
  const bool is_tree = tree->size() > 1;

  CheckpointOutcome out;
  out.generation = gen;
  store::Manifest m;
  for (size_t i = 0; i < tree->size(); ++i) {
    auto& member = (*tree)[i];
    const std::string image_name = i == 0 ? "rank-0.h5" : "proc-" + std::to_string(member.ids.pid) + ".h5";
    auto writer = image::ImageWriter::create(partial_dir + "/" + image_name);
    if (!writer) {
      write_self_flag(root, req, image::kSelfFailed);
      return abandon(writer.error());
    }
    capture::CaptureOptions opts;
    opts.job = job.id;
    opts.rank = 0;
    opts.generation = gen;
    if (i == 0) opts.self_flag_addr = req.self_flag_addr;
    opts.allow_children = is_tree;
    auto img = capture::capture(member.frozen, opts, **writer);
    if (!img) {
      write_self_flag(root, req, image::kSelfFailed);
      return abandon(img.error());
    }
    store::ManifestImage mi{static_cast<uint32_t>(i), image_name, 0, (*writer)->bytes_written()};
    struct stat st {};
    if (::stat((partial_dir + "/" + image_name).c_str(), &st) == 0) mi.size = static_cast<uint64_t>(st.st_size);
    if (is_tree) {
      mi.pid = member.ids.pid;
      mi.ppid = member.ids.ppid;
      mi.pgid = member.ids.pgid;
      mi.sid = member.ids.sid;
      mi.shared_fds = member.shared_fds;
    }
    out.memory_bytes += mi.memory_bytes;  // pages and saved file contents
    out.image_bytes += mi.size;
    m.images.push_back(std::move(mi));
  }

  m.job = job.id;
  m.generation = gen;
  m.created_ns = now_ns();
  m.pause_ns = static_cast<int64_t>(seconds_since(t_frozen) * 1e9);
  m.duration_ns = static_cast<int64_t>(seconds_since(t0) * 1e9);
  struct utsname u {};
  if (::uname(&u) == 0) m.host = u.nodename;
  if (auto r = store::write_manifest(partial_dir, m); !r) {
    write_self_flag(root, req, image::kSelfFailed);
    return abandon(r.error());
  }
  auto committed = store.commit_generation(job.id, gen);
  if (!committed) {
    write_self_flag(root, req, image::kSelfFailed);
    return abandon(committed.error());
  }
  out.dir = *committed;

  if (req.stop) {
    // Children first: a killed parent would otherwise leave them to init meanwhile.
    for (size_t i = tree->size(); i-- > 0;) {
      if (auto r = (*tree)[i].frozen.kill(); !r) return fail(r.error().wrap("stop job " + job.id + " after checkpoint"));
    }
    out.stopped = true;
  } else {
    write_self_flag(root, req, image::kSelfResumed);
    for (auto& member : *tree)
      if (auto r = member.frozen.resume(); !r) return fail(r.error().wrap("resume job " + job.id));
  }
  out.pause_s = std::chrono::duration<double>(Clock::now() - t_frozen).count();
  out.total_s = seconds_since(t0);
  return out;
}

}  // namespace ferry::cli
