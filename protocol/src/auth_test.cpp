// SPDX-License-Identifier: Apache-2.0
// HMAC credentials: a published test vector, sign/verify round trip, and every refusal
// (wrong secret, tampered payload, stale, replayed, no credential).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>

#include "ferry/proto/auth.hpp"
#include "ferry/proto/status.hpp"

namespace ferry::proto {
namespace {

std::string hex(const std::string& raw) {
  static constexpr char k[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += k[c >> 4];
    out += k[c & 15];
  }
  return out;
}

TEST(Hmac, Rfc4231Case2) {
  std::string data = "what do ya want for nothing?";
  auto mac = hmac_sha256("Jefe", ByteView(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
  EXPECT_EQ(hex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

Frame frame_of(const Bytes& b) {
  auto f = decode_frame(b);
  EXPECT_TRUE(f) << f.error().message();
  return *f;
}

TEST(Auth, SignedFrameVerifiesOnce) {
  Status st{.job = "7"};
  Bytes b = encode_signed(st, 1, 1000, "s3cret");
  AuthChecker checker;
  auto ok = checker.verify(frame_of(b), "s3cret", realtime_ns());
  EXPECT_TRUE(ok) << ok.error().message();
  auto again = checker.verify(frame_of(b), "s3cret", realtime_ns());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), make_error_code(perr::auth_failed));
  EXPECT_NE(again.error().message().find("replayed"), std::string::npos);
}

TEST(Auth, Refusals) {
  AuthChecker checker;
  Status st{.job = "7"};
  EXPECT_FALSE(checker.verify(frame_of(encode_signed(st, 1, 1000, "s3cret")), "other", realtime_ns()));
  EXPECT_FALSE(checker.verify(frame_of(encode(st, 2)), "s3cret", realtime_ns()));  // scheme none
  Bytes tampered = encode_signed(st, 3, 1000, "s3cret");
  tampered.back() = '8';  // job "7" -> "8"
  EXPECT_FALSE(checker.verify(frame_of(tampered), "s3cret", realtime_ns()));
  Bytes uid_changed = encode_signed(st, 4, 1000, "s3cret");
  uid_changed[21] = 0;  // claimed uid 1000 -> 768: the signature covers the uid
  EXPECT_FALSE(checker.verify(frame_of(uid_changed), "s3cret", realtime_ns()));
  auto stale = checker.verify(frame_of(encode_signed(st, 5, 1000, "s3cret")), "s3cret",
                              realtime_ns() + kMaxClockSkewNs + 1'000'000'000);
  ASSERT_FALSE(stale);
  EXPECT_NE(stale.error().message().find("5 minutes"), std::string::npos);
}

TEST(Secret, CreatedOnFirstUseWithMode0600) {
  auto dir = std::filesystem::temp_directory_path() / ("ferry-auth-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::string path = (dir / "sub" / "secret").string();
  ::setenv("FERRY_SECRET_FILE", path.c_str(), 1);
  auto a = load_or_create_user_secret();
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->size(), 64u);
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = load_or_create_user_secret();
  ASSERT_TRUE(b);
  EXPECT_EQ(*a, *b);
  ::chmod(path.c_str(), 0644);
  auto loose = read_secret(path);
  ASSERT_FALSE(loose);
  EXPECT_NE(loose.error().message().find("chmod 600"), std::string::npos);
  ::unsetenv("FERRY_SECRET_FILE");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry::proto
