// SPDX-License-Identifier: Apache-2.0
#include "ferry/common/hash.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include <string>
#include <utility>
#include <vector>

namespace {

TEST(Hash, StreamingEqualsOneShot) {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + 7);
  auto bytes = std::as_bytes(std::span(data.data(), data.size()));
  ferry::hash::Xxh3Stream s;
  s.update(bytes.subspan(0, 12345));
  s.update(bytes.subspan(12345));
  EXPECT_EQ(s.digest(), ferry::hash::xxh3_64(bytes));
}

// Image checksums must not depend on which build of XXH3 runs (hash.cpp picks AVX2 when the
// CPU has it): digests of the portable scalar build, one-shot and streamed in odd pieces.
TEST(Hash, KnownDigestsWhateverTheVectorBuild) {
  const std::vector<std::pair<size_t, uint64_t>> known = {
      {0, 0x2d06800538d394c2ull},    {1, 0xb95d064157e4a8b4ull},    {3, 0x4b2bf643aad9977cull},
      {17, 0xd15eb938f2b03cd0ull},   {129, 0x5ecbf4005614dab4ull},  {240, 0x084e5622e8f1d582ull},
      {241, 0xe458863ec159b424ull},  {1024, 0xc5eb3b0e7580130full}, {4096, 0x75128aa99ab78bbfull},
      {65536, 0x6fac6b85b321bd36ull}, {1048583, 0x4dc7311253c0dd11ull}};
  std::vector<unsigned char> buf((1u << 20) + 7);
  unsigned x = 12345;
  for (auto& b : buf) {
    x = x * 1103515245u + 12345u;
    b = static_cast<unsigned char>(x >> 16);
  }
  const auto all = std::as_bytes(std::span(buf.data(), buf.size()));
  for (const auto& [len, digest] : known) {
    EXPECT_EQ(ferry::hash::xxh3_64(all.subspan(0, len)), digest) << len << " bytes";
    ferry::hash::Xxh3Stream s;
    for (size_t at = 0, step = 1; at < len; at += step, step = step * 3 + 1)
      s.update(all.subspan(at, std::min(step, len - at)));
    EXPECT_EQ(s.digest(), digest) << len << " bytes streamed";
  }
}

TEST(Hash, DifferentContentDifferentDigest) {
  std::string a = "hello", b = "hellp";
  EXPECT_NE(ferry::hash::xxh3_128_hex(std::as_bytes(std::span(a.data(), a.size()))),
            ferry::hash::xxh3_128_hex(std::as_bytes(std::span(b.data(), b.size()))));
  EXPECT_EQ(ferry::hash::xxh3_128_hex(std::as_bytes(std::span(a.data(), a.size()))).size(), 32u);
}

}  // namespace
