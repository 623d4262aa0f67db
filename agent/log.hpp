// SPDX-License-Identifier: Apache-2.0
// The agent's log lines (format and sinks: common/daemon_log). Every line carries the channel
// (agent.link, agent.ranks, agent.round, ...) and the context job, node (this agent's),
// rank and generation, so `grep 'job=7 '` finds a job's history:
//
//   2026-11-27 09:40:01.123 info  agent.round job=7 node=n1 rank=1 gen=3: dump ok 8413096 bytes
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "daemon_log.hpp"

namespace ferry::agent {

using Severity = daemon_log::Severity;

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
