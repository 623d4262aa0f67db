// SPDX-License-Identifier: Apache-2.0
// MANIFEST.json: the commit record of one generation, written last (atomically, fsynced)
// inside the generation directory. It lists every image file with its size and XXH3 digest
// of the file's first 64 KiB so a truncated or replaced file is noticed before any restore.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ferry/common/result.hpp"

namespace ferry::store {

struct ManifestImage {
  uint32_t rank = 0;
  std::string file;          // name inside the generation directory
  uint64_t size = 0;         // bytes of the file
  uint64_t memory_bytes = 0; // bytes of memory pages stored
  // Process tree (0 when absent: a single-process generation). Ids in the job's PID namespace.
  int32_t pid = 0, ppid = 0, pgid = 0, sid = 0;
  // {fd, parent_fd}: this process's fd is the same open file description as its parent's
  // parent_fd (inherited across fork; one offset). Restore hands the parent's one over.
  std::vector<std::pair<int32_t, int32_t>> shared_fds;
};

struct Manifest {
  std::string format = "ferry-manifest";
  uint32_t version = 1;
  std::string job;
  uint64_t generation = 0;
  int64_t created_ns = 0;
  int64_t pause_ns = 0;      // how long the application was stopped
  int64_t duration_ns = 0;   // from freeze to commit
  std::string host;
  std::vector<ManifestImage> images;
  // Earlier generations whose images this one's (incremental) images refer to: retention must
  // keep them as long as this generation is kept. Empty for a full generation.
  std::vector<uint64_t> needs;
};

Result<void> write_manifest(const std::string& gen_dir, const Manifest& m);
// Reads and checks the manifest: format, version, and that every listed file exists with
// exactly the recorded size (errc::image_corrupt otherwise, naming the file).
Result<Manifest> read_manifest(const std::string& gen_dir);

}  // namespace ferry::store
