// SPDX-License-Identifier: Apache-2.0
// The coordinator's Boost.Log set-up and one call to emit a line. Every line carries the
// severity, the channel (coord.session, coord.round, ...) and the context job, node, rank
// and generation ("-" where one does not apply), so `grep job=7` finds a job's history:
//
//   2024-05-01 12:00:01.123 info  coord.round job=7 node=n2 rank=- gen=3: dump ok 512 MiB
//
// Sinks: DIR/coordinator.log (every severity from the configured minimum) and stderr
// (warning and above). Levels: error = the operation failed; warning = degraded but
// continuing; info = state transitions; debug = details.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ferry::coord {

enum class Severity { debug, info, warning, error };

struct LogCtx {
  std::string job;
  std::string node;
  std::optional<std::uint32_t> rank;
  std::optional<std::uint64_t> generation;
};

// Adds the file and stderr sinks. Call once from main(); throws on an unwritable file.
void init_logging(const std::string& log_file, Severity min_file_severity);
void log(Severity sev, const char* channel, const LogCtx& ctx, const std::string& message);

}  // namespace ferry::coord
