// SPDX-License-Identifier: Apache-2.0
// Credentials of the ferry protocol (PROTOCOL.md "Authentication"): HMAC-SHA256 over
// signing_input() with a shared secret, the receiver's checks (credential, clock skew,
// replay), and where secrets live. Library ferry_proto_auth (OpenSSL libcrypto), kept apart
// from ferry_protocol so the codec stays free of crypto. MUNGE would be a second scheme here:
// callers only use sign()/encode_signed() and AuthChecker::verify().
//
// Secrets:
//   cluster secret  root-only file shared by the coordinator and every agent
//                   (default /etc/ferry/cluster.secret; --cluster-secret FILE)
//   user secret     $FERRY_SECRET_FILE, else $HOME/.ferry/secret (0600, created on first use);
//                   the coordinator reads the same file of uid U from U's home directory
//                   (getpwuid), or from DIR/U when started with --user-secrets DIR.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "ferry/common/result.hpp"
#include "ferry/proto/codec.hpp"

namespace ferry::proto {

inline constexpr std::int64_t kMaxClockSkewNs = 5LL * 60 * 1'000'000'000;  // 5 minutes
inline constexpr const char* kDefaultClusterSecret = "/etc/ferry/cluster.secret";

// HMAC-SHA256(key, data): 32 raw bytes.
std::string hmac_sha256(std::string_view key, ByteView data);

// An auth block for a new frame: scheme hmac_sha256, `uid`, now, a random nonce, and the
// HMAC of the signing input.
Auth sign(MsgType type, std::uint64_t request_id, ByteView payload, std::uint32_t uid,
          std::string_view secret);

// encode() with a fresh signed auth block.
template <class M>
Bytes encode_signed(const M& msg, std::uint64_t request_id, std::uint32_t uid, std::string_view secret) {
  Bytes payload = encode_payload(msg);
  return encode(msg, request_id, sign(M::kType, request_id, payload, uid, secret));
}

// The receiver's side: one per daemon (it remembers nonces for the replay check).
class AuthChecker {
public:
  // perr::auth_failed unless f carries an hmac_sha256 credential that verifies with secret,
  // issued within kMaxClockSkewNs of now_ns, whose (uid, nonce) was not seen in that window.
  Result<void> verify(const Frame& f, std::string_view secret, std::int64_t now_ns);
  std::size_t remembered() const noexcept { return seen_.size(); }

private:
  void forget_older_than(std::int64_t oldest_ns);
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::int64_t> seen_;  // -> issued_ns
};

std::int64_t realtime_ns();

// Reads a secret file (trailing whitespace trimmed). Refuses an empty one, and, when
// private_only, one that group or others may read.
Result<std::string> read_secret(const std::string& path, bool private_only = true);
// The calling user's secret file path ($FERRY_SECRET_FILE, else $HOME/.ferry/secret).
std::string user_secret_path();
// Reads the calling user's secret, creating it (32 random bytes, hex, mode 0600) if absent.
Result<std::string> load_or_create_user_secret();
// Where the coordinator finds the secret of uid: DIR/<uid> if dir is given, else the home
// directory of uid (getpwuid) + /.ferry/secret.
Result<std::string> user_secret_path_for(std::uint32_t uid, const std::optional<std::string>& dir);

}  // namespace ferry::proto
