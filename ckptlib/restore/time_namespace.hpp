// SPDX-License-Identifier: Apache-2.0
// A time namespace for a restored job, so CLOCK_MONOTONIC and CLOCK_BOOTTIME continue from
// their values at checkpoint instead of jumping (backwards on another host or after a reboot).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "ferry/common/result.hpp"
#include "ferry/image/model.hpp"

namespace ferry::restore {

// Makes every process the calling thread creates from now on (fork, clone, and through them
// a PID namespace's init and its children) start in a fresh time namespace whose
// MONOTONIC/BOOTTIME offsets are (clock at checkpoint) - (clock now), from img.clocks. Must be
// called by the process's main thread (the offsets file is per process) BEFORE the restore
// child or its spawner is created; the caller itself stays in its own namespace. Each call
// creates a new namespace. Returns true if a namespace was set up; false (and a log line)
// when the image has no clocks, or when the kernel refused (no CAP_SYS_ADMIN/CAP_SYS_TIME,
// no CONFIG_TIME_NS) and the clocks would not go backwards anyway (they only jump forward
// by the downtime then). A refusal that would make a clock go backwards is an error
// (errc::unsupported) and nothing was changed. CLOCK_REALTIME cannot be offset by Linux: the
// restored job's wall clock jumps forward by the downtime.
Result<bool> prepare_time_namespace(const image::ProcessImage& img,
                                    const std::function<void(const std::string&)>& log = {});

// The offsets line written to /proc/self/timens_offsets for a clock ("monotonic -5 250000000"
// for -4.75 s: the nanoseconds part is always 0..999999999).
std::string timens_offset_line(const char* clock, int64_t offset_ns);

// The offsets of the job's time namespace for img ((clock at checkpoint) - (host clock now)),
// as prepare_time_namespace computes them; nullopt when the image has no clocks. For a
// namespace made elsewhere (launch::PidNamespace in a user namespace).
struct TimeOffsets {
  int64_t monotonic_ns = 0, boottime_ns = 0;
  std::string text() const;  // both timens_offset_lines
};
std::optional<TimeOffsets> time_offsets_for(const image::ProcessImage& img);
// No time namespace could be made (`why`): errc::unsupported when the job's monotonic clocks
// would then go backwards, else fine (a log line: they jump forward by the downtime).
Result<void> check_without_time_namespace(const TimeOffsets& off, const Error& why,
                                          const std::function<void(const std::string&)>& log = {});

}  // namespace ferry::restore
