// SPDX-License-Identifier: Apache-2.0
// The agent's connection to its coordinator (PROTOCOL.md "Agents and liveness"): connect,
// AGENT_REGISTER, a HEARTBEAT every heartbeat_interval_ms, requests handed to the agent, and
// replies and notifications sent back. Every frame sent is signed with the cluster secret;
// every frame received must verify with it (AuthChecker), else the connection is closed.
//
// Algorithm:
//   disconnected --connect ok--> send AGENT_REGISTER --reply ok--> registered (heartbeats;
//   requests dispatched; unacknowledged RANK_EXITED re-sent)
//   any I/O error, malformed or unauthenticated frame, refused registration -> close, wait the
//   backoff (200 ms doubling to 5 s, reset once registered), connect again.
//   HEARTBEAT answered with not_registered (the coordinator forgot us) -> AGENT_REGISTER again
//   on the same connection.
// A reply is sent only on the connection its request came on (`epoch`); after a reconnect the
// coordinator has given up on that request anyway. Notifications (RANK_EXITED) are kept until
// acknowledged and re-sent after every registration.
#pragma once

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it (C++20)
#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <variant>

#include "ferry/proto/auth.hpp"
#include "ferry/proto/codec.hpp"

namespace ferry::agent {

struct LinkConfig {
  std::string host, port;
  std::string node;
  std::string secret;
  std::string mpi_host;  // AGENT_REGISTER hostname: how mpirun's --host names this node (default: hostname)
};

// An unsolicited report kept until the coordinator acknowledges it.
using Notice = std::variant<proto::RankExited, proto::MpiRunEnded>;

class CoordinatorLink {
public:
  // A request from the coordinator: LAUNCH_RANKS, ROUND_STEP or RESTORE_RANKS.
  using RequestHandler = std::function<void(std::uint64_t epoch, std::uint64_t request_id, proto::AnyMessage)>;

  CoordinatorLink(boost::asio::io_context& io, LinkConfig cfg, RequestHandler on_request,
                  std::function<std::uint32_t()> live_ranks);
  void start();
  void stop();

  std::uint64_t epoch() const noexcept { return epoch_; }
  bool registered() const noexcept { return registered_; }

  // Sends a reply on connection `epoch` (dropped if that connection is gone).
  template <class M>
  void reply(std::uint64_t epoch, std::uint64_t request_id, const M& msg) {
    if (epoch != epoch_ || !connected_) return;
    send(proto::encode_signed(msg, request_id, 0, cfg_.secret));
  }
  // Sends RANK_EXITED (or MPI_RUN_ENDED) now (if registered) and again after each
  // registration until acked.
  void notify(Notice msg);

private:
  void connect();
  void on_connected();
  void read_header();
  void read_body(std::size_t size);
  void on_frame(const proto::Frame& f);
  void send_register();
  void send_heartbeat();
  void send_pending();
  void send(proto::Bytes frame);
  void write_next();
  void drop(const std::string& why);

  boost::asio::io_context& io_;
  LinkConfig cfg_;
  RequestHandler on_request_;
  std::function<std::uint32_t()> live_ranks_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket sock_;
  boost::asio::steady_timer retry_timer_, heartbeat_timer_;
  proto::AuthChecker auth_;
  std::deque<proto::Bytes> out_;
  bool writing_ = false;
  bool connected_ = false;
  bool registered_ = false;
  bool stopped_ = false;
  std::uint64_t epoch_ = 0;
  std::uint64_t next_id_ = 1;
  std::uint64_t register_id_ = 0;
  std::uint64_t heartbeat_id_ = 0;
  std::uint64_t session_id_ = 0;
  std::uint64_t heartbeat_seq_ = 0;
  std::chrono::milliseconds heartbeat_interval_{2000};
  std::chrono::milliseconds backoff_{200};
  std::uint8_t header_[4] = {};
  proto::Bytes body_;
  // request id on the current connection -> notification awaiting its ACK
  std::map<std::uint64_t, Notice> in_flight_;
  std::deque<Notice> pending_;  // not yet sent on the current registration
};

}  // namespace ferry::agent
