// SPDX-License-Identifier: Apache-2.0
// What an image holds, for `ferry inspect [--json]`: header, process, regions (aligned table
// with sizes, kinds and stored bytes), threads, signals, files, blobs, features. Also renders
// a ValidationReport. Pure functions of their input; no exceptions escape.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "ferry/image/model.hpp"
#include "ferry/image/validate.hpp"

namespace ferry::image {

nlohmann::json to_json(const ProcessImage& image);
std::string to_text(const ProcessImage& image);

nlohmann::json to_json(const ValidationReport& report);
std::string to_text(const ValidationReport& report);

// Small helpers also useful to other printers.
std::string region_kind_name(RegionKind kind);
std::string fd_kind_name(FdKind kind);
std::string event_fd_kind_name(EventFdKind kind);
std::string xfeature_names(uint64_t xfeatures);   // "x87 sse avx opmask zmm_hi256 hi16_zmm"
std::string record_kind_names(uint64_t kinds);    // "memory threads signals ..."

}  // namespace ferry::image
