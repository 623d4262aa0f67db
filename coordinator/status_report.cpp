// SPDX-License-Identifier: Apache-2.0
// STATUS replies (see status_report.hpp). The progress of a dump is measured on the shared
// store: the bytes already in gen-N.partial, against the size of the previous generation
// (the best estimate of the total), over the time since the round started; the nodes that
// have not answered the dump step are the slow ones.
#include "status_report.hpp"

#include <filesystem>
#include <set>

#include "ferry/proto/status.hpp"
#include "incarnation.hpp"

namespace ferry::coord {
namespace {

std::uint64_t tree_bytes(const std::string& dir) {
  std::uint64_t sum = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (it->is_regular_file(e2)) sum += it->file_size(e2);
  }
  return sum;
}

std::string progress(const RoundDriver& r, std::uint64_t previous_bytes) {
  const auto& cfg = r.round().config();
  std::string s = "checkpointing gen " + std::to_string(cfg.generation) + ": " + std::string(name(r.round().state()));
  std::uint64_t written = tree_bytes(cfg.generation_dir);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - r.started()).count();
  s += ", " + std::to_string(written) + " of ~" + std::to_string(previous_bytes) + " bytes written";
  if (secs > 0) s += ", " + std::to_string(static_cast<std::uint64_t>(written / secs)) + " B/s";
  if (!r.dumping().empty()) {
    s += ", waiting for";
    for (const auto& n : r.dumping()) s += " " + n;
  }
  return s;
}

}  // namespace

proto::StatusReply build_status(StatusInputs& in, const std::string& job, std::uint32_t uid) {
  proto::StatusReply out;
  std::optional<std::uint32_t> owner = uid == 0 ? std::nullopt : std::optional<std::uint32_t>(uid);
  std::vector<JobRow> rows;
  if (job.empty()) {
    auto all = in.db.jobs(owner);
    if (!all) {
      out.code = proto::to_wire(all.error().code());
      out.message = all.error().message();
      return out;
    }
    rows = *all;
  } else {
    auto one = in.db.job(job, owner);
    if (!one && owner) one = in.db.job(job);
    if (!one) {
      out.code = proto::to_wire(one.error().code());
      out.message = one.error().message();
      return out;
    }
    if (owner && one->owner_uid != uid) {
      out.code = static_cast<std::uint16_t>(errc::permission);
      out.message = "job " + one->id + " belongs to uid " + std::to_string(one->owner_uid);
      return out;
    }
    rows.push_back(*one);
  }
  for (const auto& row : rows) {
    proto::JobInfo info;
    info.job = row.id;
    info.name = row.name;
    info.uid = row.owner_uid;
    info.state = row.state;
    info.ntasks = row.ntasks;
    std::set<std::string> seen;
    for (const auto& n : row.nodes)
      if (seen.insert(n).second) info.nodes.push_back(n);
    if (auto gens = in.db.generations(row.id))
      for (const auto& g : *gens) info.generations.push_back({g.number, g.time_ns, g.bytes, g.duration_ns});
    if (auto recs = in.db.restarts(row.id))
      for (const auto& r : *recs) info.restarts.push_back(to_wire(r));
    if (auto r = in.rounds.find(row.id); r != in.rounds.end())
      info.state = progress(*r->second, info.generations.empty() ? 0 : info.generations.back().bytes);
    out.jobs.push_back(std::move(info));
  }
  std::set<std::string> names;
  if (auto nodes = in.db.nodes())
    for (const auto& n : *nodes) names.insert(n.name);
  for (const auto& n : in.agents.alive_nodes()) names.insert(n);
  auto stored = in.db.nodes();
  for (const auto& n : names) {
    proto::NodeInfo ni;
    ni.node = n;
    ni.alive = in.agents.alive(n) ? 1 : 0;
    ni.last_heartbeat_ns = in.agents.last_seen_ns(n);
    if (ni.last_heartbeat_ns == 0 && stored)
      for (const auto& s : *stored)
        if (s.name == n) ni.last_heartbeat_ns = s.last_heartbeat_ns;
    out.nodes.push_back(ni);
  }
  return out;
}

}  // namespace ferry::coord
