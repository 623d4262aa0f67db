// SPDX-License-Identifier: Apache-2.0
// The agent's Boost.Log set-up and one call to emit a line. Every line carries the severity,
// the channel (agent.link, agent.ranks, agent.round, ...) and the context node, job, rank and
// generation ("-" where one does not apply), so `grep 'job=7 '` finds a job's history:
//
//   2026-11-27 09:40:01.123 info  agent.round node=n1 job=7 rank=1 gen=3: dump ok 8413096 bytes
//
// Sinks: the log file (every severity from the configured minimum) and stderr (warning and
// above). Levels: error = the operation failed; warning = degraded but continuing; info =
// state transitions; debug = details. (Same format as the coordinator's coordinator/log.hpp.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ferry::agent {

enum class Severity { debug, info, warning, error };

struct LogCtx {
  std::string job;
  std::optional<std::uint32_t> rank;
  std::optional<std::uint64_t> generation;
};

// Adds the file and stderr sinks; `node` goes on every line. Call once from main(); throws
// when the file cannot be opened.
void init_logging(const std::string& node, const std::string& log_file, Severity min_file_severity);
void log(Severity sev, const char* channel, const LogCtx& ctx, const std::string& message);

}  // namespace ferry::agent
