// SPDX-License-Identifier: Apache-2.0
// The agent's log context (see log.hpp).
#include "log.hpp"

namespace ferry::agent {
namespace {

std::string& node_name() {
  static std::string n = "-";
  return n;
}

}  // namespace

void init_logging(const std::string& node, const std::string& log_file, Severity min_file_severity) {
  node_name() = node;
  daemon_log::init(log_file, min_file_severity);
}

void log(Severity sev, const char* channel, const LogCtx& ctx, const std::string& message) {
  daemon_log::emit(sev, channel, daemon_log::context(ctx.job, node_name(), ctx.rank, ctx.generation), message);
}

}  // namespace ferry::agent
