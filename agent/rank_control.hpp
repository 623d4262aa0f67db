// SPDX-License-Identifier: Apache-2.0
// Talking to a rank supervisor's control socket (cli/supervisor.cpp): one request line per
// connection, one reply line, asynchronously on the agent's io_context with a deadline, so a
// slow dump never blocks the agent's loop or its heartbeats. Plus the pure parts, unit-tested:
// which line a round phase sends, and how a reply line becomes a RankResult.
#pragma once

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it (C++20)
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "ferry/common/result.hpp"
#include "ferry/proto/messages.hpp"

namespace ferry::agent {

// Sends `line` (without newline) to the socket at path and calls done once with the reply
// line (without newline), or with an error: cannot connect, connection closed without a
// reply, or perr::timeout after `timeout`.
void control_request(boost::asio::io_context& io, const std::string& path, const std::string& line,
                     std::chrono::milliseconds timeout, std::function<void(Result<std::string>)> done);

// The control line for one rank in a round phase; nullopt for phases the agent answers
// itself (prepare, commit). generation_dir is the step's gen-N.partial.
std::optional<std::string> control_line(proto::RoundPhase phase, std::uint64_t generation,
                                        const std::string& generation_dir, std::uint32_t rank);

// "ok ..." / "error CODE MESSAGE" of a phase reply -> RankResult (dump: bytes = image bytes,
// duration = the supervisor's own dump time). Anything else is perr::internal naming it.
proto::RankResult rank_result(std::uint32_t rank, proto::RoundPhase phase, const std::string& reply,
                              std::uint64_t elapsed_ns);

// A status line of a rank supervisor (cli/cmd_rank.cpp): "launch ok PID", "validate ok",
// "restore error CODE MESSAGE", ...
struct StatusLine {
  std::string phase;      // launch, validate, restore
  bool ok = false;
  std::int32_t pid = 0;   // "... ok PID"
  std::uint16_t code = 0; // "... error CODE MESSAGE"
  std::string message;
};
std::optional<StatusLine> parse_status_line(const std::string& line);

}  // namespace ferry::agent
