// SPDX-License-Identifier: Apache-2.0
// validate_image(): checks an image file against SCHEMA.md and lists every check made, for
// `ferry inspect` and for restore's pre-flight. Structural checks come from ImageReader::open;
// this adds consistency checks between tables (references in range, regions sorted, runs
// inside regions, XSAVE features) and, when deep, every chunk checksum.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/reader.hpp"

namespace ferry::image {

struct ValidationReport {
  std::string path;
  bool deep = false;
  std::vector<ImageCheck> checks;   // in the order made; stops after the first failure
  std::optional<Error> error;       // the first failure (its errc says which kind), if any
  bool ok() const noexcept { return !error.has_value(); }
};

// Returns a report (ok or not) for any existing file; fails only if `path` cannot be stat'ed
// (errno error, e.g. ENOENT). deep = also read every pages and blobs chunk (verify_all).
Result<ValidationReport> validate_image(const std::string& path, bool deep);

// The consistency checks alone, on an image already read (restore uses them too).
// Appends its checks to `checks`; returns the first failure (errc::image_corrupt).
Result<void> check_consistency(const ProcessImage& image, std::vector<ImageCheck>& checks);

}  // namespace ferry::image
