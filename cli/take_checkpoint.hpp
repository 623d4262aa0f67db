// SPDX-License-Identifier: Apache-2.0
// One checkpoint of one local process into a new generation of its job: freeze, capture into
// an HDF5 image, fsync, write the manifest, commit by renaming, then resume or stop. Any
// failure leaves the previous generations untouched and the process running.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "ferry/common/result.hpp"
#include "job_store.hpp"

namespace ferry::cli {

struct CheckpointRequest {
  bool stop = false;                        // kill the process once the generation is committed
  std::optional<uint64_t> self_flag_addr;   // a ferry_checkpoint() call waits on this word
};

struct CheckpointOutcome {
  uint64_t generation = 0;
  std::string dir;
  uint64_t memory_bytes = 0;
  uint64_t image_bytes = 0;
  double pause_s = 0;       // process stopped
  double total_s = 0;       // request to commit
  bool stopped = false;
};

Result<CheckpointOutcome> take_checkpoint(const store::JobStore& store, const store::JobRecord& job,
                                          pid_t pid, const CheckpointRequest& req);

}  // namespace ferry::cli
