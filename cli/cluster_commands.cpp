// SPDX-License-Identifier: Apache-2.0
// launch / checkpoint / restart through the coordinator (see cluster_commands.hpp).
#include "cluster_commands.hpp"

#include <unistd.h>

#include <iomanip>
#include <iostream>

#include "coordinator_client.hpp"
#include "exit_status.hpp"
#include "options.hpp"

extern char** environ;

namespace ferry::cli {

std::optional<std::uint32_t> parse_duration_s(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::size_t used = 0;
  unsigned long v = 0;
  try {
    v = std::stoul(s, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string unit = s.substr(used);
  unsigned long mult = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
  if (mult == 0 || v * mult > 0xffffffffUL) return std::nullopt;
  return static_cast<std::uint32_t>(v * mult);
}

std::vector<std::string> split_nodes(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto comma = s.find(',', start);
    std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

int cluster_launch(const ClusterLaunch& l) {
  auto client = CoordinatorClient::connect(l.address);
  if (!client) return unreachable(l.address, client.error());
  proto::LaunchJob req;
  req.name = l.name;
  req.argv = l.argv;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd)) req.cwd = cwd;
  for (char** e = environ; *e; ++e) req.env.emplace_back(*e);
  req.nodes = l.nodes;
  req.ntasks = l.ntasks ? l.ntasks : static_cast<std::uint32_t>(std::max<std::size_t>(1, l.nodes.size()));
  req.interval_s = l.interval_s;
  req.keep = l.keep;
  auto r = client->call<proto::LaunchJob, proto::LaunchJobReply>(req);
  if (!r) return unreachable(l.address, r.error());
  if (r->code != proto::kWireOk) {
    complain("launch: " + r->message);
    return exit_for_reply(r->code, r->message);
  }
  if (l.detach) {
    std::cout << r->job << std::endl;
    return 0;
  }
  // The launch's record is the job's first one (generation 0).
  auto st = client->call<proto::Status, proto::StatusReply>(proto::Status{r->job});
  if (!st) return unreachable(l.address, st.error());
  if (st->code != proto::kWireOk || st->jobs.empty() || st->jobs.front().restarts.empty()) {
    complain("launch: job " + r->job + " has no launch record (" + st->message + ")");
    return kExitInternal;
  }
  std::uint64_t record = st->jobs.front().restarts.front().restart_id;
  std::cerr << "ferry: job " << r->job << " launched: " << req.ntasks << " ranks (record " << record << ")\n";
  return wait_for_record(*client, record, l.json, 0);
}

int cluster_checkpoint(const std::string& address, const std::string& job, bool stop, std::uint32_t timeout_ms) {
  auto client = CoordinatorClient::connect(address);
  if (!client) return unreachable(address, client.error());
  auto r = client->call<proto::Checkpoint, proto::CheckpointReply>(
      proto::Checkpoint{job, stop ? std::uint8_t{1} : std::uint8_t{0}, timeout_ms});
  if (!r) return unreachable(address, r.error());
  if (r->code != proto::kWireOk) {
    std::string where;
    if (r->failed_phase) where = " (phase " + std::string(proto::name(*r->failed_phase));
    if (r->failed_node) where += (where.empty() ? " (" : ", ") + std::string("node ") + *r->failed_node;
    if (r->failed_rank) where += (where.empty() ? " (" : ", ") + std::string("rank ") + std::to_string(*r->failed_rank);
    if (!where.empty()) where += ")";
    complain("checkpoint job " + job + ": " + r->message + where);
    return exit_for_reply(r->code, r->message);
  }
  std::cout << "generation " << r->generation << " committed\n";
  std::cerr << "ferry: job " << job << ": " << std::fixed << std::setprecision(1)
            << static_cast<double>(r->bytes) / (1 << 20) << " MiB of images, committed in " << std::setprecision(2)
            << static_cast<double>(r->duration_ns) / 1e9 << " s" << (stop ? "; job stopped" : "") << "\n";
  return 0;
}

int cluster_restart(const ClusterRestart& rs) {
  auto client = CoordinatorClient::connect(rs.address);
  if (!client) return unreachable(rs.address, client.error());
  proto::Restart req{rs.job, rs.generation, rs.nodes, {}, rs.detach ? std::uint8_t{1} : std::uint8_t{0}};
  auto r = client->call<proto::Restart, proto::RestartReply>(req);
  if (!r) return unreachable(rs.address, r.error());
  if (r->code != proto::kWireOk) {
    complain("restart job " + rs.job + " refused: " + r->message);
    return exit_for_reply(r->code, r->message);
  }
  if (rs.detach) {
    std::cout << r->restart_id << std::endl;
    return 0;
  }
  std::cerr << "ferry: job " << rs.job << ": restart " << r->restart_id << " from generation " << r->generation << "\n";
  return wait_for_record(*client, r->restart_id, rs.json, 0);
}

}  // namespace ferry::cli
