// SPDX-License-Identifier: Apache-2.0
// Wire status codes <-> std::error_code.
#include "ferry/proto/status.hpp"

namespace ferry::proto {
namespace {

class ProtoCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "ferry.proto"; }
  std::string message(int c) const override {
    switch (static_cast<perr>(c)) {
      case perr::auth_failed: return "authentication failed";
      case perr::not_registered: return "agent not registered";
      case perr::timeout: return "timed out";
      case perr::agent_lost: return "agent lost";
      case perr::bad_state: return "not possible in the current state";
      case perr::unknown_message: return "unknown message type";
      case perr::internal: return "internal error";
    }
    return "unknown protocol status";
  }
};

bool is_perr(int v) {
  return (v >= 100 && v <= 105) || v == 199;
}

}  // namespace

const std::error_category& proto_category() noexcept {
  static const ProtoCategory c;
  return c;
}

std::uint16_t to_wire(const std::error_code& ec) {
  if (!ec) return kWireOk;
  int v = ec.value();
  if (ec.category() == ferry_category() && v > 0 && v < 100) return static_cast<std::uint16_t>(v);
  if (ec.category() == proto_category() && is_perr(v)) return static_cast<std::uint16_t>(v);
  if ((ec.category() == std::system_category() || ec.category() == std::generic_category()) &&
      v > 0 && v < 65535 - kWireErrnoBase)
    return static_cast<std::uint16_t>(kWireErrnoBase + v);
  return static_cast<std::uint16_t>(perr::internal);
}

std::error_code from_wire(std::uint16_t code) {
  if (code == kWireOk) return {};
  if (code < 100) return {code, ferry_category()};
  if (is_perr(code)) return {code, proto_category()};
  if (code > kWireErrnoBase) return {code - kWireErrnoBase, std::system_category()};
  return make_error_code(perr::internal);
}

Error error_from_wire(std::uint16_t code, const std::string& message) {
  return Error(from_wire(code), message);
}

}  // namespace ferry::proto
