// SPDX-License-Identifier: Apache-2.0
// Single checks of validate.cpp that tests and restore.cpp call on their own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/model.hpp"

namespace ferry::restore {

// XSAVE components used by the image (header.xfeatures | every thread's xstate_bv) must be
// enabled in host_xcr0, and the image's area must fit this CPU's. Names missing components.
Result<void> check_cpu(const image::ImageHeader& h, const std::vector<image::Thread>& threads,
                       uint64_t host_xcr0, uint32_t host_xsave_size);
// A file's identity against what is at its path now: exists and is regular; if `identical`,
// same size, mtime and (when recorded) XXH3-128, hashed once per (dev, ino, size, mtime).
Result<void> check_file_identity(const image::FileIdentity& id, bool identical, const std::string& role);
// A regular open file: writable ones at least their checkpoint size (restore truncates back);
// read-only ones the same size and mtime.
Result<void> check_open_file(const image::FdRecord& f);

}  // namespace ferry::restore
