// SPDX-License-Identifier: Apache-2.0
// Algorithm: begin gen-N.partial -> freeze the process -> capture into rank-0.h5 (the writer
// fsyncs it) -> write MANIFEST.json (atomic, fsynced) -> rename gen-N.partial to gen-N and
// fsync the job directory (the commit point) -> resume (or kill with --stop). A crash or
// kill -9 before the rename leaves only a .partial directory, which no reader considers and
// the next checkpoint removes.
#include "take_checkpoint.hpp"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>

#include "capture/capture.hpp"
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

  auto frozen = capture::FrozenProcess::freeze(pid);
  if (!frozen) return abandon(frozen.error());
  auto t_frozen = Clock::now();

  const std::string image_name = "rank-0.h5";
  auto writer = image::ImageWriter::create(partial_dir + "/" + image_name);
  if (!writer) {
    write_self_flag(*frozen, req, image::kSelfFailed);
    return abandon(writer.error());
  }
  capture::CaptureOptions opts;
  opts.job = job.id;
  opts.rank = 0;
  opts.generation = gen;
  opts.self_flag_addr = req.self_flag_addr;
  auto img = capture::capture(*frozen, opts, **writer);
  if (!img) {
    write_self_flag(*frozen, req, image::kSelfFailed);
    return abandon(img.error());
  }

  CheckpointOutcome out;
  out.generation = gen;
  out.memory_bytes = (*writer)->bytes_written();  // pages and saved file contents
  struct stat st {};
  if (::stat((partial_dir + "/" + image_name).c_str(), &st) == 0) out.image_bytes = static_cast<uint64_t>(st.st_size);

  store::Manifest m;
  m.job = job.id;
  m.generation = gen;
  m.created_ns = now_ns();
  m.pause_ns = static_cast<int64_t>(seconds_since(t_frozen) * 1e9);
  m.duration_ns = static_cast<int64_t>(seconds_since(t0) * 1e9);
  struct utsname u {};
  if (::uname(&u) == 0) m.host = u.nodename;
  m.images.push_back({0, image_name, out.image_bytes, out.memory_bytes});
  if (auto r = store::write_manifest(partial_dir, m); !r) {
    write_self_flag(*frozen, req, image::kSelfFailed);
    return abandon(r.error());
  }
  auto committed = store.commit_generation(job.id, gen);
  if (!committed) {
    write_self_flag(*frozen, req, image::kSelfFailed);
    return abandon(committed.error());
  }
  out.dir = *committed;

  if (req.stop) {
    if (auto r = frozen->kill(); !r) return fail(r.error().wrap("stop job " + job.id + " after checkpoint"));
    out.stopped = true;
  } else {
    write_self_flag(*frozen, req, image::kSelfResumed);
    if (auto r = frozen->resume(); !r) return fail(r.error().wrap("resume job " + job.id));
  }
  out.pause_s = std::chrono::duration<double>(Clock::now() - t_frozen).count();
  out.total_s = seconds_since(t0);
  return out;
}

}  // namespace ferry::cli
