// SPDX-License-Identifier: Apache-2.0
// `ferry inspect IMAGE|JOB [--json]`: what an image holds, and whether it validates.
#include <sys/stat.h>

#include <iostream>

#include "commands.hpp"
#include "exit_status.hpp"
#include "ferry/image/chain.hpp"
#include "ferry/image/describe.hpp"
#include "ferry/image/reader.hpp"
#include "ferry/image/validate.hpp"
#include "generation_lookup.hpp"
#include "job_store.hpp"
#include "options.hpp"

namespace ferry::cli {

int cmd_inspect(const Args& args) {
  po::options_description opts("ferry inspect [--store DIR] [--json] [--generation N] IMAGE|JOB");
  opts.add_options()("help,h", "show this help")("store", po::value<std::string>(), "job store directory")(
      "json", "print JSON")("generation", po::value<uint64_t>(), "generation of JOB (default: newest)")(
      "target", po::value<std::string>(), "image file or job");
  po::positional_options_description pos;
  pos.add("target", 1);
  po::variables_map vm;
  if (!parse("inspect", args, opts, pos, vm)) return kExitUsage;
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  auto target = opt<std::string>(vm, "target");
  if (!target) {
    complain("inspect: no image or job given");
    return kExitUsage;
  }
  std::string path = *target;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    auto store = store::JobStore::open(store::default_root(opt<std::string>(vm, "store")));
    if (!store) {
      complain("inspect: " + store.error().message());
      return exit_status_for(store.error());
    }
    auto job = store->find(*target);
    if (!job) {
      complain("inspect: " + *target + " is neither an image file nor a job: " + job.error().message());
      return exit_status_for(job.error());
    }
    auto gen = find_generation(*store, *job, opt<uint64_t>(vm, "generation"));
    if (!gen) {
      complain("inspect job " + job->id + ": " + gen.error().message());
      return exit_status_for(gen.error());
    }
    path = gen->image_path;
  }

  auto report = image::validate_image(path, /*deep=*/true);
  auto reader = image::ImageReader::open(path);
  if (vm.count("json")) {
    nlohmann::json j;
    j["path"] = path;
    if (reader) j["image"] = image::to_json((*reader)->image());
    if (report) j["validation"] = image::to_json(*report);
    j["valid"] = report && report->ok();
    if (!reader) j["error"] = reader.error().message();
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << "image " << path << "\n";
    if (reader) std::cout << image::to_text((*reader)->image());
    if (report) std::cout << image::to_text(*report);
  }
  if (!reader) {
    complain("inspect: " + reader.error().message());
    return exit_status_for(reader.error());
  }
  if (!report) {
    complain("inspect: " + report.error().message());
    return exit_status_for(report.error());
  }
  if (report->ok() && !(*reader)->image().page_refs.empty()) {
    // An incremental image: every generation it builds on must be there, be the image it was
    // built on, and hold intact the pages it refers to.
    std::vector<image::ChainLink> links;
    auto chain = image::open_image_chain(path, &links);
    Result<void> v = chain ? (*chain)->verify_all() : Result<void>(fail(chain.error()));
    if (!vm.count("json")) {
      for (const auto& l : links) std::cout << "chain: generation " << l.generation << " " << l.path << "\n";
      std::cout << "chain: " << (v ? "ok" : "FAILED: " + v.error().message()) << "\n";
    }
    if (!v) {
      complain("inspect: " + v.error().message());
      return exit_status_for(v.error());
    }
  }
  return report->ok() ? 0 : kExitImage;
}

}  // namespace ferry::cli
