// SPDX-License-Identifier: Apache-2.0
// Checkpoints of one local process (or process tree), in two forms:
//   - take_checkpoint(): one whole generation of a single-process job: freeze, capture into
//     HDF5 images, fsync, write the manifest, commit by renaming, then resume or stop. Any
//     failure leaves the previous generations untouched and the process running.
//   - the phases a rank supervisor runs for a coordinator's round (freeze_job, dump_frozen,
//     resume_frozen, kill_frozen): the job stays frozen between them, held in a FrozenJob;
//     the coordinator, not this process, commits the generation.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "capture/capture.hpp"
#include "capture/process_tree.hpp"
#include "ferry/common/result.hpp"
#include "job_store.hpp"

namespace ferry::cli {

struct CheckpointRequest {
  bool stop = false;                        // kill the process once the generation is committed
  // Resume the job as soon as its state is captured into copy-on-write snapshots (its pages
  // are written behind it); ignored with stop. FERRY_CHECKPOINT_SNAPSHOT=0 in the supervisor's
  // environment turns it off.
  bool snapshot = true;
  std::optional<uint64_t> self_flag_addr;   // a ferry_checkpoint() call waits on this word
  // Incremental checkpoints (single-process jobs; see take_checkpoint.cpp): store only the
  // pages written since the previous generation of this incarnation and refer to the others.
  // The first such request (and any without a usable previous generation) writes a full image
  // and starts dirty tracking; `full` forces a full image while tracking goes on.
  bool incremental = false;
  bool full = false;
  // Retention after the commit: keep the newest `keep` generations and those they need (0: all).
  uint32_t keep = 0;
};

struct CheckpointOutcome {
  uint64_t generation = 0;
  std::string dir;
  uint64_t memory_bytes = 0;
  uint64_t image_bytes = 0;
  double pause_s = 0;       // process stopped
  double total_s = 0;       // request to commit
  bool stopped = false;
  bool incremental = false; // the image refers to earlier generations for unchanged pages
};

Result<CheckpointOutcome> take_checkpoint(const store::JobStore& store, const store::JobRecord& job,
                                          pid_t pid, const CheckpointRequest& req);

// A job's whole process tree, every process stopped (ptrace) before any is captured.
// Destroying it resumes whatever is still frozen.
struct FrozenJob {
  std::vector<capture::TreeMember> tree;  // the root (the job's program) first
  std::chrono::steady_clock::time_point frozen_at;
};

Result<FrozenJob> freeze_job(pid_t pid);

struct DumpSpec {
  std::string dir;                         // exists; receives the images and MANIFEST.json
  std::string job;
  uint32_t rank = 0;
  uint64_t generation = 0;
  std::optional<uint64_t> self_flag_addr;  // recorded in the root's image
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // Snapshot every process (capture::MemorySnapshot) and resume the job before the pages are
  // written: dump_frozen then returns with the job running (DumpOutcome::resumed). Off for a
  // coordinator's round, whose ranks must stay frozen until the round says so.
  bool snapshot = false;
  // Not null: the root's image is incremental on this basis (a single process only).
  std::shared_ptr<const capture::IncrementalBasis> incremental;
  // Set: the root's capture calls it last while frozen (capture::CaptureOptions::before_resume).
  std::function<void()> before_resume;
};

struct DumpOutcome {
  uint64_t memory_bytes = 0;  // pages and saved file contents
  uint64_t image_bytes = 0;   // bytes of the image files (manifest excluded)
  double seconds = 0;         // time spent in dump_frozen
  bool resumed = false;       // spec.snapshot: the job was resumed once its state was captured
  double pause_s = 0;         // freeze to resume (when resumed)
};

// Captures the root into rank-<rank>.h5 and every other process into proc-<pid>.h5, then
// writes MANIFEST.json; every file and `dir` itself are fsynced before it returns. The job
// stays frozen unless spec.snapshot (then it runs again once every process's snapshot is
// taken, before the pages are written). On failure files already written stay in `dir` (the
// caller discards it).
Result<DumpOutcome> dump_frozen(FrozenJob& job, const DumpSpec& spec);
// Lets every process continue (children after their parent).
Result<void> resume_frozen(FrozenJob& job);
// SIGKILLs every process, children first (a killed parent would leave them to init).
Result<void> kill_frozen(FrozenJob& job);

}  // namespace ferry::cli
