// SPDX-License-Identifier: Apache-2.0
// Ranks of this node by job, and the translation of a supervisor's wait status.
#include "node_state.hpp"

#include <sys/wait.h>

namespace ferry::agent {

bool is_live(RankState s) { return s == RankState::starting || s == RankState::running; }

std::shared_ptr<RankProc> NodeState::add(RankProc rank) {
  auto& slot = jobs_[rank.job][rank.rank];
  if (slot && is_live(slot->state)) return nullptr;
  slot = std::make_shared<RankProc>(std::move(rank));
  return slot;
}

std::shared_ptr<RankProc> NodeState::find(const std::string& job, std::uint32_t rank) const {
  auto j = jobs_.find(job);
  if (j == jobs_.end()) return nullptr;
  auto r = j->second.find(rank);
  return r == j->second.end() ? nullptr : r->second;
}

std::vector<std::shared_ptr<RankProc>> NodeState::ranks_of(const std::string& job) const {
  std::vector<std::shared_ptr<RankProc>> out;
  if (auto j = jobs_.find(job); j != jobs_.end())
    for (const auto& [n, r] : j->second) out.push_back(r);
  return out;
}

void NodeState::remove(const std::string& job, std::uint32_t rank) {
  auto j = jobs_.find(job);
  if (j == jobs_.end()) return;
  j->second.erase(rank);
  if (j->second.empty()) jobs_.erase(j);
}

std::uint32_t NodeState::live_ranks() const {
  std::uint32_t n = 0;
  for (const auto& [job, ranks] : jobs_)
    for (const auto& [r, p] : ranks) n += p->state == RankState::running;
  return n;
}

ExitReport exit_report(int wait_status) {
  ExitReport r;
  if (WIFSIGNALED(wait_status)) {
    r.signal = WTERMSIG(wait_status);
  } else if (WIFEXITED(wait_status)) {
    int code = WEXITSTATUS(wait_status);
    if (code > 128 && code <= 128 + 64) r.signal = code - 128;
    else r.exit_status = code;
  }
  return r;
}

}  // namespace ferry::agent
