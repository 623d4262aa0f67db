// SPDX-License-Identifier: Apache-2.0
// Writing and checking MANIFEST.json, the commit record of a generation.
#include "manifest.hpp"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "ferry/common/fs.hpp"

namespace ferry::store {

namespace {
constexpr const char* kManifestName = "MANIFEST.json";
}

Result<void> write_manifest(const std::string& gen_dir, const Manifest& m) {
  nlohmann::json images = nlohmann::json::array();
  for (const auto& i : m.images) {
    nlohmann::json e = {{"rank", i.rank}, {"file", i.file}, {"size", i.size}, {"memory_bytes", i.memory_bytes}};
    if (i.pid != 0) {
      e["pid"] = i.pid;
      e["ppid"] = i.ppid;
      e["pgid"] = i.pgid;
      e["sid"] = i.sid;
      nlohmann::json sh = nlohmann::json::array();
      for (const auto& [fd, pfd] : i.shared_fds) sh.push_back({fd, pfd});
      e["shared_fds"] = sh;
    }
    images.push_back(e);
  }
  nlohmann::json j = {{"format", m.format},         {"version", m.version},   {"job", m.job},
                      {"generation", m.generation}, {"created_ns", m.created_ns},
                      {"pause_ns", m.pause_ns},     {"duration_ns", m.duration_ns},
                      {"host", m.host},             {"images", images}};
  if (!m.needs.empty()) j["needs"] = m.needs;
  return fs::write_file_atomic(gen_dir + "/" + kManifestName, j.dump(2) + "\n", 0600);
}

Result<Manifest> read_manifest(const std::string& gen_dir) {
  std::string path = gen_dir + "/" + kManifestName;
  auto text = fs::read_file(path);
  if (!text) return fail(errc::image_corrupt, "generation " + gen_dir + " has no readable manifest: " + text.error().message());
  Manifest m;
  try {
    auto j = nlohmann::json::parse(*text);
    m.format = j.at("format").get<std::string>();
    m.version = j.at("version").get<uint32_t>();
    if (m.format != "ferry-manifest") return fail(errc::image_foreign, path + " is not a ferry manifest");
    if (m.version != 1) return fail(errc::image_version, path + ": manifest version " + std::to_string(m.version) + " is not supported");
    m.job = j.at("job").get<std::string>();
    m.generation = j.at("generation").get<uint64_t>();
    m.created_ns = j.value("created_ns", int64_t{0});
    m.pause_ns = j.value("pause_ns", int64_t{0});
    m.duration_ns = j.value("duration_ns", int64_t{0});
    m.host = j.value("host", "");
    if (j.contains("needs")) m.needs = j.at("needs").get<std::vector<uint64_t>>();
    for (const auto& i : j.at("images")) {
      ManifestImage mi;
      mi.rank = i.at("rank").get<uint32_t>();
      mi.file = i.at("file").get<std::string>();
      mi.size = i.at("size").get<uint64_t>();
      mi.memory_bytes = i.value("memory_bytes", uint64_t{0});
      mi.pid = i.value("pid", int32_t{0});
      mi.ppid = i.value("ppid", int32_t{0});
      mi.pgid = i.value("pgid", int32_t{0});
      mi.sid = i.value("sid", int32_t{0});
      if (i.contains("shared_fds"))
        for (const auto& p : i.at("shared_fds"))
          mi.shared_fds.emplace_back(p.at(0).get<int32_t>(), p.at(1).get<int32_t>());
      if (mi.file.find('/') != std::string::npos || mi.file.empty() || mi.file[0] == '.')
        return fail(errc::image_corrupt, path + ": bad image file name '" + mi.file + "'");
      m.images.push_back(mi);
    }
  } catch (const std::exception& e) {
    return fail(errc::image_corrupt, "manifest " + path + " is corrupt: " + e.what());
  }
  for (const auto& i : m.images) {
    std::string f = gen_dir + "/" + i.file;
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0)
      return fail(errc::image_corrupt, "image " + f + " listed in the manifest is missing");
    if (static_cast<uint64_t>(st.st_size) != i.size)
      return fail(errc::image_corrupt, "image " + f + " is " + std::to_string(st.st_size) +
                                           " bytes but the manifest says " + std::to_string(i.size) +
                                           " (truncated or replaced)");
  }
  return m;
}

}  // namespace ferry::store
