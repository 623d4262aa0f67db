// SPDX-License-Identifier: Apache-2.0
#include "generation_lookup.hpp"

namespace ferry::cli {

Result<GenerationRef> find_generation(const store::JobStore& store, const store::JobRecord& job,
                                      std::optional<uint64_t> wanted) {
  auto gens = store.generations(job.id);
  if (!gens) return fail(gens.error());
  if (gens->empty()) return fail(errc::not_found, "job " + job.id + " has no committed generation");
  uint64_t gen = gens->back();
  if (wanted) {
    bool found = false;
    for (auto g : *gens) found |= g == *wanted;
    if (!found)
      return fail(errc::not_found, "job " + job.id + " has no committed generation " + std::to_string(*wanted) +
                                       " (newest is " + std::to_string(gens->back()) + ")");
    gen = *wanted;
  }
  GenerationRef ref;
  ref.generation = gen;
  ref.dir = store.generation_dir(job.id, gen);
  auto m = store::read_manifest(ref.dir);
  if (!m) return fail(m.error());
  ref.manifest = *m;
  if (ref.manifest.images.empty()) return fail(errc::image_corrupt, "manifest of " + ref.dir + " lists no image");
  ref.image_path = ref.dir + "/" + ref.manifest.images.front().file;
  return ref;
}

}  // namespace ferry::cli
