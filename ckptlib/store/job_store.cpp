// SPDX-License-Identifier: Apache-2.0
// Job directories, job records (job.json) and generation directories of the local store.
#include "job_store.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "ferry/common/fs.hpp"
#include "manifest.hpp"

namespace ferry::store {
namespace {

constexpr const char* kPartialSuffix = ".partial";

std::string gen_name(uint64_t gen) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "gen-%06llu", static_cast<unsigned long long>(gen));
  return buf;
}

// Parses "gen-000012" (committed) or "gen-000012.partial"; 0 if neither.
uint64_t parse_gen(const std::string& name, bool* partial) {
  if (name.rfind("gen-", 0) != 0) return 0;
  std::string rest = name.substr(4);
  *partial = false;
  if (rest.size() > 8 && rest.ends_with(kPartialSuffix)) {
    *partial = true;
    rest = rest.substr(0, rest.size() - 8);
  }
  if (rest.empty() || !std::all_of(rest.begin(), rest.end(), ::isdigit)) return 0;
  return std::strtoull(rest.c_str(), nullptr, 10);
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  if (std::all_of(name.begin(), name.end(), ::isdigit)) return false;  // would shadow ids
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; }) &&
         name[0] != '.';
}

}  // namespace

std::string default_root(const std::optional<std::string>& cli_store) {
  if (cli_store && !cli_store->empty()) return *cli_store;
  if (const char* h = std::getenv("FERRY_HOME"); h && *h) return h;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.ferry";
}

Result<JobStore> JobStore::open(const std::string& root) {
  std::string abs = root;
  if (!abs.empty() && abs[0] != '/') {
    std::error_code ec;
    abs = std::filesystem::absolute(root, ec).lexically_normal().string();
  }
  FERRY_TRY_VOID(fs::make_dirs(abs + "/jobs", 0700));
  FERRY_TRY_VOID(fs::make_dirs(abs + "/names", 0700));
  return JobStore(abs);
}

std::string JobStore::job_dir(const std::string& id) const { return root_ + "/jobs/" + id; }
std::string JobStore::control_socket(const std::string& id) const { return job_dir(id) + "/control.sock"; }

Result<JobRecord> JobStore::create_job(const std::string& name, const std::vector<std::string>& argv) {
  if (!name.empty() && !valid_name(name))
    return fail(errc::protocol, "job name '" + name +
                                    "' is not valid (1-64 letters, digits, '-', '_', '.', not all digits)");
  if (!name.empty()) {
    auto existing = find(name);
    if (existing && existing->state == "running" && supervisor_alive(*existing))
      return fail(errc::busy, "job name '" + name + "' is used by running job " + existing->id);
  }
  uint64_t next = 1;
  DIR* d = ::opendir((root_ + "/jobs").c_str());
  if (!d) return fail_errno("open " + root_ + "/jobs");
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (!n.empty() && std::all_of(n.begin(), n.end(), ::isdigit)) next = std::max<uint64_t>(next, std::stoull(n) + 1);
  }
  ::closedir(d);
  JobRecord job;
  for (;; ++next) {
    std::string dir = job_dir(std::to_string(next));
    if (::mkdir(dir.c_str(), 0700) == 0) break;
    if (errno != EEXIST) return fail_errno("create job directory " + dir);
  }
  job.id = std::to_string(next);
  job.name = name;
  job.uid = ::getuid();
  job.argv = argv;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd)) job.cwd = cwd;
  job.created_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  job.state = "created";
  FERRY_TRY_VOID(save(job));
  if (!name.empty()) {
    std::string link = root_ + "/names/" + name;
    std::string tmp = link + ".tmp." + std::to_string(::getpid());
    ::unlink(tmp.c_str());
    if (::symlink(("../jobs/" + job.id).c_str(), tmp.c_str()) != 0) return fail_errno("create name link " + tmp);
    if (::rename(tmp.c_str(), link.c_str()) != 0) return fail_errno("rename name link to " + link);
  }
  return job;
}

Result<JobRecord> JobStore::find(const std::string& job) const {
  if (job.empty()) return fail(errc::not_found, "no job given");
  std::string id = job;
  if (!std::all_of(job.begin(), job.end(), ::isdigit)) {
    char target[512];
    ssize_t n = ::readlink((root_ + "/names/" + job).c_str(), target, sizeof target - 1);
    if (n < 0) return fail(errc::not_found, "no job named '" + job + "' in store " + root_);
    target[n] = 0;
    id = fs::basename(target);
  }
  std::string path = job_dir(id) + "/job.json";
  auto text = fs::read_file(path);
  if (!text) return fail(errc::not_found, "no job " + job + " in store " + root_);
  try {
    auto j = nlohmann::json::parse(*text);
    JobRecord r;
    r.id = j.at("id").get<std::string>();
    r.name = j.value("name", "");
    r.uid = j.value("uid", 0u);
    r.argv = j.value("argv", std::vector<std::string>{});
    r.cwd = j.value("cwd", "");
    r.created_ns = j.value("created_ns", int64_t{0});
    r.state = j.value("state", "");
    r.pid = j.value("pid", 0);
    r.supervisor_pid = j.value("supervisor_pid", 0);
    r.exit_status = j.value("exit_status", -1);
    r.restored_from = j.value("restored_from", uint64_t{0});
    r.run = j.value("run", uint64_t{0});
    r.restart_failure = j.value("restart_failure", "");
    r.restart_failure_phase = j.value("restart_failure_phase", "");
    r.coordinator = j.value("coordinator", "");
    return r;
  } catch (const std::exception& e) {
    return fail(errc::image_corrupt, "read job record " + path + ": " + e.what());
  }
}

Result<void> JobStore::save(const JobRecord& r) const {
  nlohmann::json j = {{"id", r.id},           {"name", r.name},       {"uid", r.uid},
                      {"argv", r.argv},       {"cwd", r.cwd},         {"created_ns", r.created_ns},
                      {"state", r.state},     {"pid", r.pid},         {"supervisor_pid", r.supervisor_pid},
                      {"exit_status", r.exit_status}, {"restored_from", r.restored_from},
                      {"run", r.run}};
  if (!r.restart_failure.empty()) {
    j["restart_failure"] = r.restart_failure;
    j["restart_failure_phase"] = r.restart_failure_phase;
  }
  if (!r.coordinator.empty()) j["coordinator"] = r.coordinator;
  return fs::write_file_atomic(job_dir(r.id) + "/job.json", j.dump(2) + "\n");
}

std::string JobStore::generation_dir(const std::string& id, uint64_t gen) const {
  return job_dir(id) + "/" + gen_name(gen);
}

Result<std::vector<uint64_t>> JobStore::generations(const std::string& id) const {
  std::vector<uint64_t> out;
  DIR* d = ::opendir(job_dir(id).c_str());
  if (!d) return fail_errno("open job directory " + job_dir(id));
  while (auto* e = ::readdir(d)) {
    bool partial = false;
    uint64_t g = parse_gen(e->d_name, &partial);
    if (g && !partial) out.push_back(g);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void JobStore::remove_partials(const std::string& id) const {
  std::vector<std::string> stale;
  DIR* d = ::opendir(job_dir(id).c_str());
  if (!d) return;
  while (auto* e = ::readdir(d)) {
    bool partial = false;
    if (parse_gen(e->d_name, &partial) && partial) stale.push_back(job_dir(id) + "/" + e->d_name);
  }
  ::closedir(d);
  for (const auto& s : stale) {
    std::error_code ec;
    std::filesystem::remove_all(s, ec);
  }
}

Result<std::vector<uint64_t>> JobStore::prune_generations(const std::string& id, uint32_t keep) const {
  FERRY_TRY(gens, generations(id));
  std::vector<uint64_t> removed;
  if (keep == 0 || gens.size() <= keep) return removed;
  std::set<uint64_t> kept(gens.end() - keep, gens.end());
  std::vector<uint64_t> todo(kept.begin(), kept.end());
  while (!todo.empty()) {
    uint64_t g = todo.back();
    todo.pop_back();
    auto m = read_manifest(generation_dir(id, g));
    if (!m) return fail(m.error().wrap("retention of job " + id + " (nothing removed)"));
    for (uint64_t n : m->needs)
      if (kept.insert(n).second) todo.push_back(n);
  }
  for (uint64_t g : gens) {
    if (kept.count(g)) continue;
    std::string dir = generation_dir(id, g);
    if (::rename(dir.c_str(), (dir + kPartialSuffix).c_str()) != 0) continue;
    std::error_code ec;
    std::filesystem::remove_all(dir + kPartialSuffix, ec);
    removed.push_back(g);
  }
  (void)fs::fsync_path(job_dir(id));
  return removed;
}

Result<std::pair<uint64_t, std::string>> JobStore::begin_generation(const std::string& id) const {
  uint64_t next = 1;
  DIR* d = ::opendir(job_dir(id).c_str());
  if (!d) return fail_errno("open job directory " + job_dir(id));
  while (auto* e = ::readdir(d)) {
    bool partial = false;
    uint64_t g = parse_gen(e->d_name, &partial);
    if (g) next = std::max(next, g + 1);
  }
  ::closedir(d);
  remove_partials(id);
  std::string dir = generation_dir(id, next) + kPartialSuffix;
  if (::mkdir(dir.c_str(), 0700) != 0) return fail_errno("create generation directory " + dir);
  return std::make_pair(next, dir);
}

Result<std::string> JobStore::commit_generation(const std::string& id, uint64_t gen) const {
  std::string final_dir = generation_dir(id, gen);
  std::string partial = final_dir + kPartialSuffix;
  FERRY_TRY_VOID(fs::fsync_path(partial));
  if (::rename(partial.c_str(), final_dir.c_str()) != 0) return fail_errno("commit " + final_dir);
  FERRY_TRY_VOID(fs::fsync_path(job_dir(id)));
  return final_dir;
}

void JobStore::abandon_generation(const std::string& id, uint64_t gen) const {
  std::error_code ec;
  std::filesystem::remove_all(generation_dir(id, gen) + kPartialSuffix, ec);
}

bool supervisor_alive(const JobRecord& job) {
  if (job.supervisor_pid <= 0) return false;
  if (::kill(job.supervisor_pid, 0) != 0 && errno == ESRCH) return false;
  // The pid may have been reused: the supervisor always holds its control socket.
  return true;
}

}  // namespace ferry::store
