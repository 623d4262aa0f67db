// SPDX-License-Identifier: Apache-2.0
// Agent liveness (see agent_registry.hpp). One steady_timer per agent, re-armed on every
// frame; its expiry or the connection's close declares the agent lost exactly once (the
// entry is erased, so a late timer or a second close finds nothing).
#include "agent_registry.hpp"

#include "ferry/proto/auth.hpp"

namespace ferry::coord {

AgentRegistry::AgentRegistry(boost::asio::io_context& io, std::chrono::milliseconds lost_after,
                             OnJoined on_joined, OnLost on_lost)
    : io_(io), lost_after_(lost_after), on_joined_(std::move(on_joined)), on_lost_(std::move(on_lost)) {}

void AgentRegistry::arm(const std::string& node, Agent& a) {
  if (!a.lost_timer) a.lost_timer = std::make_unique<boost::asio::steady_timer>(io_);
  a.lost_timer->expires_after(lost_after_);
  std::uint64_t sid = a.session_id;
  a.lost_timer->async_wait([this, node, sid](boost::system::error_code ec) {
    if (ec) return;  // re-armed or cancelled
    auto it = agents_.find(node);
    if (it == agents_.end() || it->second.session_id != sid) return;
    declare_lost(node, "no heartbeat for " + std::to_string(lost_after_.count()) + " ms");
  });
}

std::uint64_t AgentRegistry::on_register(const std::string& node, const std::shared_ptr<Session>& s) {
  auto it = agents_.find(node);
  if (it != agents_.end() && it->second.session && it->second.session != s) {
    auto old = std::move(it->second.session);
    old->node.clear();  // its close is no longer this node's loss
    old->close("replaced by a new registration of node " + node);
  }
  Agent& a = agents_[node];
  a.session = s;
  a.session_id = next_session_id_++;
  a.last_seen_ns = proto::realtime_ns();
  s->node = node;
  arm(node, a);
  if (on_joined_) on_joined_(node);
  return a.session_id;
}

void AgentRegistry::on_activity(const std::string& node) {
  auto it = agents_.find(node);
  if (it == agents_.end() || !it->second.session) return;
  it->second.last_seen_ns = proto::realtime_ns();
  arm(node, it->second);
}

bool AgentRegistry::on_heartbeat(const std::string& node, std::uint64_t session_id) {
  auto it = agents_.find(node);
  if (it == agents_.end() || !it->second.session || it->second.session_id != session_id) return false;
  on_activity(node);
  return true;
}

void AgentRegistry::on_closed(const std::shared_ptr<Session>& s) {
  if (s->node.empty()) return;
  auto it = agents_.find(s->node);
  if (it == agents_.end() || it->second.session != s) return;
  declare_lost(s->node, "connection closed");
}

void AgentRegistry::expect(const std::string& node) {
  if (agents_.count(node)) return;
  Agent& a = agents_[node];
  a.session_id = next_session_id_++;
  arm(node, a);
}

// node by value: callers pass a session's own node string, which is cleared below.
void AgentRegistry::declare_lost(std::string node, const std::string& why) {
  auto it = agents_.find(node);
  if (it == agents_.end()) return;
  auto session = std::move(it->second.session);
  if (it->second.lost_timer) it->second.lost_timer->cancel();
  agents_.erase(it);
  if (session) {
    session->node.clear();
    session->close("agent lost: " + why);
  }
  if (on_lost_) on_lost_(node, why);
}

bool AgentRegistry::alive(const std::string& node) const {
  auto it = agents_.find(node);
  return it != agents_.end() && it->second.session && it->second.session->is_open();
}

std::vector<std::string> AgentRegistry::alive_nodes() const {
  std::vector<std::string> out;
  for (const auto& [name, a] : agents_)
    if (a.session && a.session->is_open()) out.push_back(name);
  return out;
}

bool AgentRegistry::send(const std::string& node, proto::Bytes frame) {
  auto it = agents_.find(node);
  if (it == agents_.end() || !it->second.session || !it->second.session->is_open()) return false;
  it->second.session->send(std::move(frame));
  return true;
}

std::int64_t AgentRegistry::last_seen_ns(const std::string& node) const {
  auto it = agents_.find(node);
  return it == agents_.end() ? 0 : it->second.last_seen_ns;
}

}  // namespace ferry::coord
