// SPDX-License-Identifier: Apache-2.0
// Finds a committed generation of a job (the newest, or a given one) and checks its manifest.
#pragma once

#include <optional>
#include <string>

#include "ferry/common/result.hpp"
#include "job_store.hpp"
#include "manifest.hpp"

namespace ferry::cli {

struct GenerationRef {
  uint64_t generation = 0;
  std::string dir;
  store::Manifest manifest;
  std::string image_path;  // rank 0's image
};

Result<GenerationRef> find_generation(const store::JobStore& store, const store::JobRecord& job,
                                      std::optional<uint64_t> wanted);

}  // namespace ferry::cli
