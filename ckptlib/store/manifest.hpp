// SPDX-License-Identifier: Apache-2.0
// MANIFEST.json: the commit record of one generation, written last (atomically, fsynced)
// inside the generation directory. It lists every image file with its size and XXH3 digest
// of the file's first 64 KiB so a truncated or replaced file is noticed before any restore.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ferry/common/result.hpp"

namespace ferry::store {

struct ManifestImage {
  uint32_t rank = 0;
  std::string file;          // name inside the generation directory
  uint64_t size = 0;         // bytes of the file
  uint64_t memory_bytes = 0; // bytes of memory pages stored
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
};

Result<void> write_manifest(const std::string& gen_dir, const Manifest& m);
// Reads and checks the manifest: format, version, and that every listed file exists with
// exactly the recorded size (errc::image_corrupt otherwise, naming the file).
Result<Manifest> read_manifest(const std::string& gen_dir);

}  // namespace ferry::store
