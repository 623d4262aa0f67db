// SPDX-License-Identifier: Apache-2.0
// The coordinator's TCP acceptor (see listener.hpp).
#include "listener.hpp"

#include <memory>

#include "log.hpp"

namespace ferry::coord {

namespace asio = boost::asio;

Listener::Listener(asio::io_context& io, SessionHandler& handler) : io_(io), handler_(handler), acceptor_(io) {}

Result<void> Listener::listen(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    asio::ip::tcp::resolver resolver(io_);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) return fail(Error(ec, "resolve " + host));
    addr = results.begin()->endpoint().address();
  }
  asio::ip::tcp::endpoint ep(addr, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(Error(ec, "listen on " + host + ":" + std::to_string(port)));
  accept_next();
  return {};
}

std::uint16_t Listener::port() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void Listener::accept_next() {
  acceptor_.async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      log(Severity::warning, "coord.listen", {}, "accept: " + ec.message());
    } else {
      socket.set_option(asio::ip::tcp::no_delay(true), ec);
      std::make_shared<Session>(std::move(socket), handler_, next_session_++)->start();
    }
    accept_next();
  });
}

}  // namespace ferry::coord
