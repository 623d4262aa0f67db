// SPDX-License-Identifier: Apache-2.0
#include "ferry/common/hash.hpp"

#include <gtest/gtest.h>

#include <string>

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

TEST(Hash, DifferentContentDifferentDigest) {
  std::string a = "hello", b = "hellp";
  EXPECT_NE(ferry::hash::xxh3_128_hex(std::as_bytes(std::span(a.data(), a.size()))),
            ferry::hash::xxh3_128_hex(std::as_bytes(std::span(b.data(), b.size()))));
  EXPECT_EQ(ferry::hash::xxh3_128_hex(std::as_bytes(std::span(a.data(), a.size()))).size(), 32u);
}

}  // namespace
