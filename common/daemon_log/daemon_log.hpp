// SPDX-License-Identifier: Apache-2.0
// The daemons' (ferry-coordinator, ferry-agent) Boost.Log set-up and one call to emit a line.
// One format for both, so their logs read and grep alike:
//
//   2026-11-27 09:40:01.123 info  agent.round job=7 node=n1 rank=1 gen=3: dump ok 8413096 bytes
//
// Each daemon formats its own context ("job= node= rank= gen=", "-" where one does not apply).
// Sinks: the daemon's log file (every severity from the configured minimum) and stderr
// (warning and above). Levels: error = the operation failed; warning = degraded but
// continuing; info = state transitions; debug = details.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ferry::daemon_log {

enum class Severity { debug, info, warning, error };

// Adds the file and stderr sinks. Call once from main(); throws when the file cannot be opened.
void init(const std::string& log_file, Severity min_file_severity);
void emit(Severity sev, const char* channel, const std::string& context, const std::string& message);

// "job=J node=N rank=R gen=G", each "-" when empty.
std::string context(const std::string& job, const std::string& node, std::optional<std::uint32_t> rank,
                    std::optional<std::uint64_t> generation);

}  // namespace ferry::daemon_log
