// SPDX-License-Identifier: Apache-2.0
// The agents the coordinator knows: node name -> its connection, session id and liveness.
// An agent is alive from a verified AGENT_REGISTER until its connection closes or no frame
// arrived for lost_after (PROTOCOL.md "Agents and liveness"); then on_lost(node) runs once.
// Nodes remembered from before a coordinator restart that do not register within
// lost_after are declared lost the same way (expect()).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "session.hpp"

namespace ferry::coord {

class AgentRegistry {
public:
  using OnLost = std::function<void(const std::string& node, const std::string& why)>;
  using OnJoined = std::function<void(const std::string& node)>;

  AgentRegistry(boost::asio::io_context& io, std::chrono::milliseconds lost_after, OnJoined on_joined,
                OnLost on_lost);

  // Registers (or re-registers) node on session s; returns the new session id. A previous
  // connection of the same node is closed (the newest registration wins).
  std::uint64_t on_register(const std::string& node, const std::shared_ptr<Session>& s);
  // Any frame from a registered session: the agent is alive.
  void on_activity(const std::string& node);
  // Heartbeat: false if session_id is not the node's current one (reply not_registered).
  bool on_heartbeat(const std::string& node, std::uint64_t session_id);
  void on_closed(const std::shared_ptr<Session>& s);
  // A node that should come back (it runs ranks of a job from before a restart).
  void expect(const std::string& node);

  bool alive(const std::string& node) const;
  std::vector<std::string> alive_nodes() const;
  // Sends frame to the node's agent; false if it is not connected.
  bool send(const std::string& node, proto::Bytes frame);
  std::int64_t last_seen_ns(const std::string& node) const;

private:
  struct Agent {
    std::shared_ptr<Session> session;
    std::uint64_t session_id = 0;
    std::int64_t last_seen_ns = 0;
    std::unique_ptr<boost::asio::steady_timer> lost_timer;
  };
  void arm(const std::string& node, Agent& a);
  void declare_lost(std::string node, const std::string& why);

  boost::asio::io_context& io_;
  std::chrono::milliseconds lost_after_;
  OnJoined on_joined_;
  OnLost on_lost_;
  std::uint64_t next_session_id_ = 1;
  std::map<std::string, Agent, std::less<>> agents_;
};

}  // namespace ferry::coord
