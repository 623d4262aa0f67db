// SPDX-License-Identifier: Apache-2.0
// One TCP connection to the coordinator (an agent or a `ferry` CLI): reads length-prefixed
// frames (PROTOCOL.md "Transport and framing"), decodes them and hands each to the
// SessionHandler; queues outgoing frames. A malformed frame closes this connection only.
// Lifetime: shared_ptr; the pending read or write keeps the session alive; close() cancels.
#pragma once

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it
#include <boost/asio.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "ferry/proto/codec.hpp"

namespace ferry::coord {

class Session;

class SessionHandler {
public:
  virtual ~SessionHandler() = default;
  // A well-formed frame (not yet authenticated). bytes stays valid during the call.
  virtual void on_frame(const std::shared_ptr<Session>& s, const proto::Frame& frame,
                        proto::AnyMessage&& msg) = 0;
  virtual void on_closed(const std::shared_ptr<Session>& s, const std::string& why) = 0;
};

class Session : public std::enable_shared_from_this<Session> {
public:
  Session(boost::asio::ip::tcp::socket socket, SessionHandler& handler, std::uint64_t id);
  void start();
  void send(proto::Bytes frame);
  void close(const std::string& why);
  bool is_open() const noexcept { return open_; }
  std::uint64_t id() const noexcept { return id_; }
  const std::string& peer() const noexcept { return peer_; }

  // Set by the handler once an AGENT_REGISTER verified: the node this connection speaks for.
  std::string node;

private:
  void read_header();
  void read_body(std::size_t total);
  void write_next();

  boost::asio::ip::tcp::socket socket_;
  SessionHandler& handler_;
  std::uint64_t id_;
  std::string peer_;
  bool open_ = true;
  proto::Bytes in_;
  std::deque<proto::Bytes> out_;
};

}  // namespace ferry::coord
