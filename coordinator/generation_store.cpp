// SPDX-License-Identifier: Apache-2.0
// Job and generation directories of the shared store, seen from the coordinator (see
// generation_store.hpp). The job manifest is the commit record of a multi-rank generation:
// it is written after every rank's DUMP reply (so every image is already fsynced), then
// fsynced, then the directory is renamed; a reader (restart) trusts only renamed
// directories whose manifest parses and lists every rank.
#include "generation_store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "ferry/common/fs.hpp"
#include "ferry/common/hash.hpp"
#include "job_store.hpp"
#include "manifest.hpp"

namespace ferry::coord {
namespace {

std::string gen_name(std::uint64_t gen) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "gen-%06llu", static_cast<unsigned long long>(gen));
  return buf;
}

Result<void> chown_to(const std::string& path, const JobRow& job) {
  if (::geteuid() != 0) return {};
  if (::chown(path.c_str(), job.owner_uid, job.owner_gid) != 0) return fail_errno("chown " + path);
  return {};
}

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

}  // namespace

Result<GenerationStore> GenerationStore::open(const std::string& root, std::string coordinator) {
  auto s = store::JobStore::open(root);  // creates jobs/ and names/
  if (!s) return fail(s.error());
  // Ranks run as their users and write below jobs/<id>/ (owned by them): the store's own
  // directories must be traversable.
  ::chmod(s->root().c_str(), 0711);
  ::chmod((s->root() + "/jobs").c_str(), 0711);
  return GenerationStore(s->root(), std::move(coordinator));
}

std::string GenerationStore::job_dir(const std::string& job) const { return root_ + "/jobs/" + job; }
std::string GenerationStore::generation_dir(const std::string& job, std::uint64_t gen) const {
  return job_dir(job) + "/" + gen_name(gen);
}
std::string GenerationStore::partial_dir(const std::string& job, std::uint64_t gen) const {
  return generation_dir(job, gen) + ".partial";
}

Result<std::string> GenerationStore::create_job(const JobRow& job) {
  auto s = store::JobStore::open(root_);
  if (!s) return fail(s.error());
  auto rec = s->create_job(job.name, job.argv);
  if (!rec) return fail(rec.error());
  rec->uid = job.owner_uid;
  rec->cwd = job.cwd;
  rec->created_ns = job.created_ns;
  rec->state = "running";
  rec->coordinator = coordinator_;
  FERRY_TRY_VOID(s->save(*rec));
  FERRY_TRY_VOID(chown_to(job_dir(rec->id), job));
  return rec->id;
}

Result<void> GenerationStore::save_job_state(const JobRow& job, const std::string& state) {
  auto s = store::JobStore::open(root_);
  if (!s) return fail(s.error());
  auto rec = s->find(job.id);
  if (!rec) return fail(rec.error());
  rec->state = state;
  return s->save(*rec);
}

Result<std::string> GenerationStore::begin_generation(const JobRow& job, std::uint64_t gen) {
  std::string dir = partial_dir(job.id, gen);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (::mkdir(dir.c_str(), 0700) != 0) return fail_errno("create generation directory " + dir);
  FERRY_TRY_VOID(chown_to(dir, job));
  return dir;
}

Result<void> GenerationStore::commit(const JobRow& job, const CommitManifest& c, std::int64_t started_ns,
                                     std::uint64_t duration_ns) {
  nlohmann::ordered_json m;
  m["format"] = "ferry-manifest";
  m["version"] = 1;
  m["kind"] = "job";
  m["job"] = job.id;
  m["generation"] = c.generation;
  m["ntasks"] = job.ntasks;
  m["created_ns"] = started_ns;
  m["duration_ns"] = duration_ns;
  m["bytes"] = c.bytes;
  nlohmann::ordered_json ranks = nlohmann::ordered_json::array();
  for (const auto& r : c.ranks) {
    std::string rank_manifest = c.generation_dir + "/rank-" + std::to_string(r.rank) + "/MANIFEST.json";
    auto digest = hash::file_xxh3_128(rank_manifest);
    if (!digest) return fail(digest.error().wrap("rank " + std::to_string(r.rank) + " manifest"));
    ranks.push_back({{"rank", r.rank}, {"node", r.node}, {"dir", "rank-" + std::to_string(r.rank)},
                     {"manifest_xxh3", *digest}, {"bytes", r.bytes}, {"dump_ns", r.dump_ns}});
  }
  m["ranks"] = ranks;
  FERRY_TRY_VOID(fs::write_file_atomic(c.generation_dir + "/MANIFEST.json", m.dump(2) + "\n", 0644));
  FERRY_TRY_VOID(fs::fsync_path(c.generation_dir));
  std::string final_dir = generation_dir(job.id, c.generation);
  if (::rename(c.generation_dir.c_str(), final_dir.c_str()) != 0) return fail_errno("commit " + final_dir);
  return fs::fsync_path(job_dir(job.id));
}

void GenerationStore::discard(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

void GenerationStore::remove_generation(const std::string& job, std::uint64_t gen) {
  std::error_code ec;
  std::filesystem::remove_all(generation_dir(job, gen), ec);
}

void GenerationStore::remove_job(const std::string& job) {
  std::error_code ec;
  std::filesystem::remove_all(job_dir(job), ec);
}

bool GenerationStore::committed_on_disk(const std::string& job, std::uint64_t gen, std::uint64_t* bytes) const {
  auto text = fs::read_file(generation_dir(job, gen) + "/MANIFEST.json");
  if (!text) return false;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || j.value("kind", "") != "job") return false;
  *bytes = j.value("bytes", std::uint64_t{0});
  if (*bytes == 0) *bytes = tree_bytes(generation_dir(job, gen));
  return true;
}

Result<void> GenerationStore::check_restorable(const JobRow& job, std::uint64_t gen, std::uint32_t* bad_rank) const {
  std::string dir = generation_dir(job.id, gen);
  auto text = fs::read_file(dir + "/MANIFEST.json");
  if (!text) return fail(errc::not_found, "generation " + std::to_string(gen) + " has no manifest (" + dir + ")");
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || j.value("kind", "") != "job" || !j.contains("ranks") || !j["ranks"].is_array() ||
      j.value("ntasks", 0u) != job.ntasks)
    return fail(errc::image_corrupt, "job manifest " + dir + "/MANIFEST.json is corrupt");
  std::map<std::uint32_t, std::string> digests;
  for (const auto& r : j["ranks"]) {
    if (!r.is_object() || !r.contains("rank") || !r["rank"].is_number_unsigned())
      return fail(errc::image_corrupt, "job manifest " + dir + "/MANIFEST.json is corrupt");
    digests[r["rank"].get<std::uint32_t>()] = r.value("manifest_xxh3", "");
  }
  for (std::uint32_t rank = 0; rank < job.ntasks; ++rank) {
    *bad_rank = rank;
    if (!digests.count(rank))
      return fail(errc::image_corrupt, "job manifest does not list rank " + std::to_string(rank));
    std::string rank_manifest = dir + "/rank-" + std::to_string(rank) + "/MANIFEST.json";
    auto digest = hash::file_xxh3_128(rank_manifest);
    if (!digest) return fail(errc::not_found, "image of rank " + std::to_string(rank) + " missing (" + rank_manifest + ")");
    if (*digest != digests[rank])
      return fail(errc::image_corrupt, "manifest of rank " + std::to_string(rank) + " changed since the commit");
    // Every image the rank's manifest lists exists with its recorded size.
    if (auto m = store::read_manifest(dir + "/rank-" + std::to_string(rank)); !m)
      return fail(m.error().wrap("image of rank " + std::to_string(rank)));
  }
  return {};
}

}  // namespace ferry::coord
