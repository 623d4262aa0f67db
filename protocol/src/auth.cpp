// SPDX-License-Identifier: Apache-2.0
// HMAC credentials, their verification, and secret files (see auth.hpp).
#include "ferry/proto/auth.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>

#include "ferry/common/fs.hpp"
#include "ferry/common/unique_fd.hpp"
#include "ferry/proto/status.hpp"

namespace ferry::proto {

std::int64_t realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string hmac_sha256(std::string_view key, ByteView data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

Auth sign(MsgType type, std::uint64_t request_id, ByteView payload, std::uint32_t uid,
          std::string_view secret) {
  Envelope env;
  env.type = type;
  env.request_id = request_id;
  env.auth.scheme = AuthScheme::hmac_sha256;
  env.auth.uid = uid;
  env.auth.issued_ns = realtime_ns();
  std::uint64_t nonce = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&nonce), sizeof nonce) != 1)
    nonce = static_cast<std::uint64_t>(env.auth.issued_ns) ^ (static_cast<std::uint64_t>(::getpid()) << 32);
  env.auth.nonce = nonce;
  env.auth.credential = hmac_sha256(secret, signing_input(env, payload));
  return env.auth;
}

Result<void> AuthChecker::verify(const Frame& f, std::string_view secret, std::int64_t now_ns) {
  const Auth& a = f.env.auth;
  auto refuse = [](const std::string& why) { return fail(Error(make_error_code(perr::auth_failed), why)); };
  if (a.scheme != AuthScheme::hmac_sha256) return refuse("credential required (hmac_sha256)");
  if (secret.empty()) return refuse("no secret to verify uid " + std::to_string(a.uid));
  std::string want = hmac_sha256(secret, signing_input(f.env, f.payload));
  if (a.credential.size() != want.size() ||
      CRYPTO_memcmp(a.credential.data(), want.data(), want.size()) != 0)
    return refuse("credential of uid " + std::to_string(a.uid) + " does not verify");
  std::int64_t skew = a.issued_ns > now_ns ? a.issued_ns - now_ns : now_ns - a.issued_ns;
  if (skew > kMaxClockSkewNs) return refuse("credential issued more than 5 minutes from now");
  forget_older_than(now_ns - kMaxClockSkewNs);
  auto [it, fresh] = seen_.emplace(std::make_pair(a.uid, a.nonce), a.issued_ns);
  if (!fresh) return refuse("credential replayed (uid " + std::to_string(a.uid) + ")");
  return {};
}

void AuthChecker::forget_older_than(std::int64_t oldest_ns) {
  for (auto it = seen_.begin(); it != seen_.end();) {
    if (it->second < oldest_ns) it = seen_.erase(it);
    else ++it;
  }
}

Result<std::string> read_secret(const std::string& path, bool private_only) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open secret " + path);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("stat secret " + path);
  if (private_only && (st.st_mode & 077) != 0)
    return fail(errc::permission, "secret " + path + " is readable by group or others (chmod 600)");
  auto text = fs::read_file(path);
  if (!text) return fail(text.error());
  std::string s = *text;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  if (s.empty()) return fail(errc::permission, "secret " + path + " is empty");
  return s;
}

std::string user_secret_path() {
  if (const char* f = std::getenv("FERRY_SECRET_FILE"); f && *f) return f;
  const char* home = std::getenv("HOME");
  if (!home || !*home) {
    if (const passwd* pw = ::getpwuid(::getuid())) home = pw->pw_dir;
  }
  return std::string(home && *home ? home : "/tmp") + "/.ferry/secret";
}

Result<std::string> load_or_create_user_secret() {
  std::string path = user_secret_path();
  if (::access(path.c_str(), F_OK) == 0) return read_secret(path);
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return fail(errc::protocol, "no randomness for a new secret");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : raw) {
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  FERRY_TRY_VOID(fs::make_dirs(fs::dirname(path), 0700));
  // O_EXCL: two first uses racing both end up with the file the winner wrote.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    if (errno == EEXIST) return read_secret(path);
    return fail_errno("create secret " + path);
  }
  std::string line = hex + "\n";
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()) || ::fsync(fd.get()) != 0)
    return fail_errno("write secret " + path);
  return hex;
}

Result<std::string> user_secret_path_for(std::uint32_t uid, const std::optional<std::string>& dir) {
  if (dir) return *dir + "/" + std::to_string(uid);
  const passwd* pw = ::getpwuid(uid);
  if (!pw || !pw->pw_dir || !*pw->pw_dir)
    return fail(Error(make_error_code(perr::auth_failed), "uid " + std::to_string(uid) + " has no home directory"));
  return std::string(pw->pw_dir) + "/.ferry/secret";
}

}  // namespace ferry::proto
