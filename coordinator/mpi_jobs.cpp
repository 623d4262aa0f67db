// SPDX-License-Identifier: Apache-2.0
// MPI jobs: saved launch, placement blocks, launcher command line, the proxies' event files,
// outcome folding (mpi_jobs.hpp explains the rules).
#include "mpi_jobs.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ferry::coord {

std::string to_json(const MpiLaunch& l) {
  nlohmann::json j{{"program", l.program}, {"mpirun_options", l.mpirun_options}, {"proxy", l.proxy},
                   {"cwd", l.cwd}, {"env", l.env}};
  return j.dump(2) + "\n";
}

Result<MpiLaunch> mpi_launch_from_json(const std::string& text) {
  try {
    auto j = nlohmann::json::parse(text);
    MpiLaunch l;
    l.program = j.at("program").get<std::vector<std::string>>();
    l.mpirun_options = j.at("mpirun_options").get<std::vector<std::string>>();
    l.proxy = j.at("proxy").get<std::string>();
    l.cwd = j.at("cwd").get<std::string>();
    l.env = j.at("env").get<std::vector<std::string>>();
    return l;
  } catch (const std::exception& e) {
    return fail(errc::image_corrupt, std::string("mpi-launch.json: ") + e.what());
  }
}

std::vector<std::string> strip_placement_options(const std::vector<std::string>& opts) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < opts.size(); ++i) {
    const std::string& a = opts[i];
    bool with_value = a == "--host" || a == "-host" || a == "-H" || a == "--hostfile" || a == "-hostfile" ||
                      a == "--machinefile" || a == "-machinefile" || a == "--default-hostfile" || a == "-np" ||
                      a == "-n" || a == "--np" || a == "-c";
    if (with_value) {
      ++i;
      continue;
    }
    out.push_back(a);
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::uint32_t>>> mpi_blocks(const std::vector<std::string>& nodes,
                                                                      std::uint32_t ntasks) {
  std::vector<std::pair<std::string, std::uint32_t>> out;
  if (nodes.empty()) return fail(errc::protocol, "no node given");
  bool counted = nodes.front().find(':') != std::string::npos;
  std::uint64_t sum = 0;
  for (const auto& n : nodes) {
    auto colon = n.find(':');
    if ((colon != std::string::npos) != counted)
      return fail(errc::protocol, "give a rank count for every node (h1:1,h2:3) or for none (h1,h2)");
    if (!counted) continue;
    std::string count = n.substr(colon + 1);
    if (count.empty() || count.size() > 6 || count.find_first_not_of("0123456789") != std::string::npos)
      return fail(errc::protocol, "node entry '" + n + "': the rank count is not a number");
    auto k = static_cast<std::uint32_t>(std::stoul(count));
    sum += k;
    if (k) out.emplace_back(n.substr(0, colon), k);
  }
  if (counted) {
    if (sum != ntasks)
      return fail(errc::protocol, "the node entries place " + std::to_string(sum) + " ranks, the job has " +
                                      std::to_string(ntasks));
    return out;
  }
  auto n = static_cast<std::uint32_t>(nodes.size());
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint32_t k = ntasks / n + (i < ntasks % n ? 1 : 0);
    if (k) out.emplace_back(nodes[i], k);
  }
  return out;
}

std::map<std::uint32_t, std::string> mpi_placement(const std::vector<std::pair<std::string, std::uint32_t>>& blocks) {
  std::map<std::uint32_t, std::string> out;
  std::uint32_t rank = 0;
  for (const auto& [node, k] : blocks)
    for (std::uint32_t i = 0; i < k; ++i) out[rank++] = node;
  return out;
}

std::vector<std::string> mpi_command(const MpiLaunch& l, const std::vector<std::pair<std::string, std::uint32_t>>& blocks,
                                     const std::map<std::string, std::string>& hosts, std::uint32_t ntasks,
                                     const std::string& restore_dir) {
  std::string launcher = "mpirun";
  for (const auto& kv : l.env)
    if (kv.rfind("MPIRUN=", 0) == 0 && kv.size() > 7) launcher = kv.substr(7);
  std::vector<std::string> cmd{launcher};
  auto opts = strip_placement_options(l.mpirun_options);
  cmd.insert(cmd.end(), opts.begin(), opts.end());
  std::string host_list;
  for (const auto& [node, k] : blocks) {
    auto h = hosts.find(node);
    host_list += (host_list.empty() ? "" : ",") + (h != hosts.end() && !h->second.empty() ? h->second : node) + ":" +
                 std::to_string(k);
  }
  cmd.insert(cmd.end(), {"-np", std::to_string(ntasks), "--host", host_list});
  for (const char* v : {"FERRY_MPI_STORE", "FERRY_MPI_JOB", "FERRY_CLI_PATH"}) cmd.insert(cmd.end(), {"-x", v});
  cmd.push_back(l.proxy);
  if (!restore_dir.empty()) cmd.insert(cmd.end(), {"--restore", restore_dir});
  cmd.push_back("--");
  cmd.insert(cmd.end(), l.program.begin(), l.program.end());
  return cmd;
}

proto::RestartRecordWire fold_mpi_run(std::uint64_t restart_id, const std::string& job,
                                      const std::map<std::uint32_t, std::string>& placement, const proto::MpiRunEnded& m,
                                      std::optional<std::uint64_t> stopped_generation) {
  proto::RestartRecordWire r;
  r.restart_id = restart_id;
  r.job = job;
  auto node_of = [&](const proto::MpiRankEnd& e) {
    auto it = placement.find(e.rank);
    return it != placement.end() ? it->second : e.node;
  };
  for (const auto& e : m.ranks) {
    if (e.kind != proto::MpiEnd::restart_failed) continue;
    r.outcome = proto::Outcome::restart_failed;
    r.phase = e.phase.value_or(proto::RestartPhase::restore);
    r.rank = e.rank;
    r.node = node_of(e);
    r.reason = e.reason.empty() ? "the rank's restore failed" : e.reason;
    return r;
  }
  if (stopped_generation) {
    r.outcome = proto::Outcome::exited;
    r.exit_status = 75;
    r.reason = "stopped after checkpoint generation " + std::to_string(*stopped_generation);
    return r;
  }
  for (const auto& e : m.ranks) {
    if (e.kind == proto::MpiEnd::signaled) {
      r.outcome = proto::Outcome::signaled;
      r.signal = e.value;
    } else if (e.kind == proto::MpiEnd::aborted) {
      r.outcome = proto::Outcome::exited;
      r.exit_status = e.value & 0xff;
      r.reason = "MPI_Abort";
    } else if (e.kind == proto::MpiEnd::exited && e.value != 0) {
      r.outcome = proto::Outcome::exited;
      r.exit_status = e.value;
    } else {
      continue;
    }
    r.rank = e.rank;
    r.node = node_of(e);
    return r;
  }
  r.outcome = proto::Outcome::exited;
  int status = m.launcher_status;
  if (status == 0 || !m.ranks.empty()) {
    r.exit_status = status;
    if (status != 0) r.reason = "mpirun exited with " + std::to_string(status) + " after every rank ended";
    return r;
  }
  if (status > 128 && status < 128 + 65) {
    r.outcome = proto::Outcome::signaled;
    r.signal = status - 128;
  } else {
    r.exit_status = status;
  }
  r.reason = "no rank reported its end (a rank or node was lost; mpirun exited with " + std::to_string(status) + ")";
  return r;
}

std::optional<proto::MpiRankEnd> parse_mpi_event(std::uint32_t rank, const std::string& line) {
  std::istringstream words(line);
  proto::MpiRankEnd e;
  e.rank = rank;
  std::string kind, value;
  if (!(words >> e.time_ns >> e.node >> kind >> value)) return std::nullopt;
  std::getline(words, e.reason);
  if (!e.reason.empty() && e.reason[0] == ' ') e.reason.erase(0, 1);
  if (kind == "restart_failed") {
    e.kind = proto::MpiEnd::restart_failed;
    e.phase = value == "validate" ? proto::RestartPhase::validate : proto::RestartPhase::restore;
    return e;
  }
  try {
    e.value = std::stoi(value);
  } catch (...) {
    return std::nullopt;
  }
  if (kind == "exited") e.kind = proto::MpiEnd::exited;
  else if (kind == "signaled") e.kind = proto::MpiEnd::signaled;
  else if (kind == "aborted") e.kind = proto::MpiEnd::aborted;
  else return std::nullopt;
  return e;
}

std::vector<proto::MpiRankEnd> read_mpi_events(const std::string& run_dir) {
  std::vector<proto::MpiRankEnd> out;
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(run_dir, ec)) {
    std::string n = f.path().filename().string();
    if (n.rfind("rank-", 0) != 0 || n.size() < 12 || n.substr(n.size() - 6) != ".event") continue;
    std::uint32_t rank = 0;
    try {
      rank = static_cast<std::uint32_t>(std::stoul(n.substr(5, n.size() - 11)));
    } catch (...) {
      continue;
    }
    std::ifstream in(f.path());
    std::string line;
    if (!std::getline(in, line)) continue;
    if (auto e = parse_mpi_event(rank, line)) out.push_back(*e);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.rank < b.rank;
  });
  return out;
}

}  // namespace ferry::coord
