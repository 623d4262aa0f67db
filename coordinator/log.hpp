// SPDX-License-Identifier: Apache-2.0
// The coordinator's log lines (format and sinks: common/daemon_log). Every line carries the
// channel (coord.session, coord.round, ...) and the context job, node, rank and generation
// ("-" where one does not apply), so `grep 'job=7 '` finds a job's history:
//
//   2026-11-27 09:40:01.123 info  coord.round job=7 node=n2 rank=- gen=3: dump ok 512 MiB
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "daemon_log.hpp"

namespace ferry::coord {

using Severity = daemon_log::Severity;

struct LogCtx {
  std::string job;
  std::string node;
  std::optional<std::uint32_t> rank;
  std::optional<std::uint64_t> generation;
};

// Adds DIR/coordinator.log and stderr sinks. Call once from main(); throws on an unwritable file.
inline void init_logging(const std::string& log_file, Severity min_file_severity) {
  daemon_log::init(log_file, min_file_severity);
}
inline void log(Severity sev, const char* channel, const LogCtx& ctx, const std::string& message) {
  daemon_log::emit(sev, channel, daemon_log::context(ctx.job, ctx.node, ctx.rank, ctx.generation), message);
}

}  // namespace ferry::coord
