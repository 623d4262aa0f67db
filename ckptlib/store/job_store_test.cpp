// SPDX-License-Identifier: Apache-2.0
#include "job_store.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "manifest.hpp"

namespace {

std::string temp_root() {
  char tmpl[] = "/tmp/ferry-store-XXXXXX";
  EXPECT_NE(mkdtemp(tmpl), nullptr);
  return tmpl;
}

TEST(JobStore, JobsAreFoundByIdAndName) {
  auto store = ferry::store::JobStore::open(temp_root());
  ASSERT_TRUE(store);
  auto a = store->create_job("sim", {"./a.out", "x"});
  ASSERT_TRUE(a);
  auto b = store->create_job("", {"./b"});
  ASSERT_TRUE(b);
  EXPECT_NE(a->id, b->id);
  auto by_name = store->find("sim");
  ASSERT_TRUE(by_name);
  EXPECT_EQ(by_name->id, a->id);
  EXPECT_EQ(by_name->argv[1], "x");
  auto missing = store->find("nope");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().is(ferry::errc::not_found));
  EXPECT_NE(missing.error().message().find("nope"), std::string::npos);
  EXPECT_FALSE(store->create_job("12", {"x"}));  // all digits would shadow ids
}

TEST(JobStore, OnlyCommittedGenerationsAreVisible) {
  auto store = ferry::store::JobStore::open(temp_root());
  ASSERT_TRUE(store);
  auto job = store->create_job("", {"x"});
  ASSERT_TRUE(job);
  auto g1 = store->begin_generation(job->id);
  ASSERT_TRUE(g1);
  EXPECT_EQ(g1->first, 1u);
  EXPECT_TRUE(store->generations(job->id)->empty());  // partial: invisible
  ASSERT_TRUE(store->commit_generation(job->id, 1));
  auto g2 = store->begin_generation(job->id);  // a checkpoint killed mid-way leaves this
  ASSERT_TRUE(g2);
  EXPECT_EQ(g2->first, 2u);
  EXPECT_EQ(*store->generations(job->id), std::vector<uint64_t>{1});
  auto g3 = store->begin_generation(job->id);  // the next one cleans the stale partial
  ASSERT_TRUE(g3);
  EXPECT_EQ(g3->first, 3u);
  EXPECT_FALSE(std::filesystem::exists(g2->second));
}

TEST(Manifest, TruncatedImageIsNoticed) {
  std::string dir = temp_root();
  { std::ofstream(dir + "/rank-0.h5") << std::string(1000, 'x'); }
  ferry::store::Manifest m;
  m.job = "1";
  m.generation = 1;
  m.images.push_back({0, "rank-0.h5", 1000, 4096});
  ASSERT_TRUE(ferry::store::write_manifest(dir, m));
  auto ok = ferry::store::read_manifest(dir);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->images[0].size, 1000u);
  ASSERT_EQ(::truncate((dir + "/rank-0.h5").c_str(), 500), 0);
  auto bad = ferry::store::read_manifest(dir);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().is(ferry::errc::image_corrupt));
  EXPECT_NE(bad.error().message().find("truncated"), std::string::npos);
}

}  // namespace

namespace {

// Commits generation `gen` of job `id` with a manifest needing `needs`.
void commit_with_needs(const ferry::store::JobStore& store, const std::string& id, std::vector<uint64_t> needs) {
  auto g = store.begin_generation(id);
  ASSERT_TRUE(g);
  ferry::store::Manifest m;
  m.job = id;
  m.generation = g->first;
  m.needs = std::move(needs);
  ASSERT_TRUE(ferry::store::write_manifest(g->second, m));
  ASSERT_TRUE(store.commit_generation(id, g->first));
}

TEST(JobStore, RetentionKeepsTheGenerationsKeptOnesNeed) {
  auto store = ferry::store::JobStore::open(temp_root());
  ASSERT_TRUE(store);
  auto job = store->create_job("", {"x"});
  ASSERT_TRUE(job);
  // 1 full; 2, 3 incremental on 1 (3 also on 2); 4 full; 5 incremental on 4; 6 on 5 and 4.
  commit_with_needs(*store, job->id, {});
  commit_with_needs(*store, job->id, {1});
  commit_with_needs(*store, job->id, {1, 2});
  commit_with_needs(*store, job->id, {});
  commit_with_needs(*store, job->id, {4});
  commit_with_needs(*store, job->id, {5, 4});
  auto removed = store->prune_generations(job->id, 2);
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(*store->generations(job->id), (std::vector<uint64_t>{4, 5, 6}));
  // Needs are followed transitively: keeping 6 alone keeps 5 and 4.
  EXPECT_TRUE(store->prune_generations(job->id, 1)->empty());
  EXPECT_EQ(*store->generations(job->id), (std::vector<uint64_t>{4, 5, 6}));
  commit_with_needs(*store, job->id, {});  // 7 full
  EXPECT_EQ(*store->prune_generations(job->id, 1), (std::vector<uint64_t>{4, 5, 6}));
  EXPECT_EQ(*store->generations(job->id), (std::vector<uint64_t>{7}));
  // A new generation after pruning gets a fresh number.
  commit_with_needs(*store, job->id, {});
  EXPECT_EQ(store->generations(job->id)->back(), 8u);
}

}  // namespace
