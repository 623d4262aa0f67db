// SPDX-License-Identifier: Apache-2.0
// Fuzz-style robustness: random bytes, random valid-looking headers and bit-flipped valid
// frames must decode to a value or an error, never crash or hang. Loops are bounded and the
// seed is fixed, so a failure reproduces.
#include <gtest/gtest.h>

#include <random>

#include "ferry/proto/codec.hpp"

namespace ferry::proto {
namespace {

constexpr int kIterations = 20000;

TEST(Fuzz, RandomBytes) {
  std::mt19937_64 rng(0xF3AA);
  int ok = 0;
  for (int i = 0; i < kIterations; ++i) {
    Bytes b(rng() % 256);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    if (decode(b)) ++ok;
  }
  EXPECT_EQ(ok, 0);  // random bytes essentially never carry the magic
}

TEST(Fuzz, RandomBodiesBehindValidHeaders) {
  std::mt19937_64 rng(0xF3AB);
  const std::uint16_t types[] = {0x0001, 0x0101, 0x0102, 0x0103, 0x0110, 0x0111, 0x0120,
                                 0x0121, 0x0130, 0x0131, 0x0140, 0x0201, 0x0202, 0x0203,
                                 0x0204, 0x0205, 0x0206, 0x0207, 0x0208, 0x0209, 0x020A,
                                 0x020B};
  for (int i = 0; i < kIterations; ++i) {
    Bytes b;
    Writer w(b);
    w.u32(0);
    w.u32(kMagic);
    w.u16(kVersion);
    w.u16(types[rng() % std::size(types)]);
    std::size_t body = rng() % 200;
    for (std::size_t k = 0; k < body; ++k) {
      // Bias towards small numbers so counts and lengths are sometimes plausible.
      w.u8(static_cast<std::uint8_t>(rng() % 4 == 0 ? rng() : rng() % 3));
    }
    w.patch_u32(0, static_cast<std::uint32_t>(b.size() - 4));
    (void)decode(b);
  }
}

TEST(Fuzz, BitFlipsOfValidFrames) {
  std::mt19937_64 rng(0xF3AC);
  std::vector<Bytes> seeds = {
      encode(StatusReply{.jobs = {{"3", "sim", 1, "running", 2, {"n1", "n2"}, {{1, 2, 3, 4}},
                                   {{.restart_id = 1, .job = "3", .exit_status = 0}}}},
                         .nodes = {{"n1", 5, 1}}},
             1),
      encode(LaunchRanks{.job = "3", .ntasks = 2, .ranks = {0, 1}, .argv = {"a", "b"}}, 2),
      encode(RoundReply{.job = "3", .results = {{0, 0, "", 1, 2}}}, 3),
      encode(CheckpointReply{.failed_phase = RoundPhase::dump, .failed_node = "n"}, 4),
  };
  int decoded = 0;
  for (int i = 0; i < kIterations; ++i) {
    Bytes b = seeds[static_cast<std::size_t>(i) % seeds.size()];
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    if (rng() % 8 == 0) b.resize(rng() % b.size());
    if (decode(b)) ++decoded;
  }
  EXPECT_GT(decoded, 0);  // some flips land in values and still decode: that is fine
}

}  // namespace
}  // namespace ferry::proto
