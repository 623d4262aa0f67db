// SPDX-License-Identifier: Apache-2.0
// Accepts TCP connections on the coordinator's --listen address and starts one Session per
// connection. An accept error is logged and accepting continues.
#pragma once

#include <cstdint>
#include <string>

#include "ferry/common/result.hpp"
#include "session.hpp"

namespace ferry::coord {

class Listener {
public:
  Listener(boost::asio::io_context& io, SessionHandler& handler);
  // Binds host:port (port 0: any free port) and starts accepting.
  Result<void> listen(const std::string& host, std::uint16_t port);
  std::uint16_t port() const;

private:
  void accept_next();

  boost::asio::io_context& io_;
  SessionHandler& handler_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint64_t next_session_ = 1;
};

}  // namespace ferry::coord
