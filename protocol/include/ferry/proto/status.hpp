// SPDX-License-Identifier: Apache-2.0
// Numeric status codes carried in replies (Ack.code, RankResult.code, ...), and their mapping
// to and from std::error_code. Ranges: 0 ok; 1-99 ferry::errc; 100-199 protocol conditions
// (proto::perr); 1000 + errno for system errors. Numbers are stable: they are on the wire.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>

#include "ferry/common/result.hpp"

namespace ferry::proto {

enum class perr {
  auth_failed = 100,     // missing, invalid, stale or replayed credential
  not_registered = 101,  // heartbeat or reply from an agent session the coordinator forgot
  timeout = 102,         // a phase or a wait exceeded its deadline
  agent_lost = 103,      // an agent stopped heartbeating or its connection closed
  bad_state = 104,       // request not valid now (checkpoint of a stopped job, ...)
  unknown_message = 105, // a message type this receiver does not handle
  internal = 199,        // anything not mappable; the message says more
};

inline constexpr std::uint16_t kWireOk = 0;
inline constexpr std::uint16_t kWireErrnoBase = 1000;

const std::error_category& proto_category() noexcept;
inline std::error_code make_error_code(perr e) noexcept {
  return {static_cast<int>(e), proto_category()};
}

// The wire code of an error (perr::internal when it has no stable number).
std::uint16_t to_wire(const std::error_code& ec);
// The error_code a wire code stands for; an unknown code becomes perr::internal.
std::error_code from_wire(std::uint16_t code);
// Error(from_wire(code), message); ok when code == 0 is the caller's to check.
Error error_from_wire(std::uint16_t code, const std::string& message);

}  // namespace ferry::proto

template <>
struct std::is_error_code_enum<ferry::proto::perr> : std::true_type {};
