// SPDX-License-Identifier: Apache-2.0
// The munge auth scheme (see munge_auth.hpp).
#include "ferry/proto/munge_auth.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "ferry/proto/auth.hpp"
#include "ferry/proto/status.hpp"

#ifdef FERRY_HAVE_MUNGE
#include <munge.h>
#endif

namespace ferry::proto {
namespace {

Error refused(const std::string& why) { return Error(make_error_code(perr::auth_failed), why); }

[[maybe_unused]] std::string sha256(ByteView data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

#ifdef FERRY_HAVE_MUNGE

bool munge_available() {
  static const bool ok = [] {
    char* cred = nullptr;
    munge_err_t e = munge_encode(&cred, nullptr, nullptr, 0);
    if (cred) std::free(cred);
    return e == EMUNGE_SUCCESS;
  }();
  return ok;
}

Result<Auth> munge_sign(MsgType type, std::uint64_t request_id, ByteView payload) {
  Envelope env;
  env.type = type;
  env.request_id = request_id;
  env.auth.scheme = AuthScheme::munge;
  env.auth.uid = static_cast<std::uint32_t>(::getuid());
  env.auth.issued_ns = realtime_ns();
  std::uint64_t nonce = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&nonce), sizeof nonce) != 1)
    nonce = static_cast<std::uint64_t>(env.auth.issued_ns) ^ (static_cast<std::uint64_t>(::getpid()) << 32);
  env.auth.nonce = nonce;
  std::string digest = sha256(signing_input(env, payload));
  char* cred = nullptr;
  munge_err_t e = munge_encode(&cred, nullptr, digest.data(), static_cast<int>(digest.size()));
  if (e != EMUNGE_SUCCESS) {
    if (cred) std::free(cred);
    return fail(refused(std::string("munge_encode: ") + munge_strerror(e)));
  }
  env.auth.credential = cred;
  std::free(cred);
  return env.auth;
}

Result<void> munge_verify(const Frame& f, std::int64_t now_ns) {
  const Auth& a = f.env.auth;
  if (a.scheme != AuthScheme::munge) return fail(refused("credential required (munge)"));
  void* buf = nullptr;
  int len = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  munge_err_t e = munge_decode(a.credential.c_str(), nullptr, &buf, &len, &uid, &gid);
  std::string payload(static_cast<const char*>(buf ? buf : ""), buf ? static_cast<std::size_t>(len) : 0);
  if (buf) std::free(buf);
  if (e != EMUNGE_SUCCESS) return fail(refused(std::string("MUNGE credential refused: ") + munge_strerror(e)));
  if (uid != a.uid)
    return fail(refused("MUNGE credential of uid " + std::to_string(uid) + " claims uid " + std::to_string(a.uid)));
  if (payload != sha256(signing_input(f.env, f.payload)))
    return fail(refused("MUNGE credential of uid " + std::to_string(uid) + " was made for another frame"));
  std::int64_t skew = a.issued_ns > now_ns ? a.issued_ns - now_ns : now_ns - a.issued_ns;
  if (skew > kMaxClockSkewNs) return fail(refused("credential issued more than 5 minutes from now"));
  return {};
}

#else  // !FERRY_HAVE_MUNGE

bool munge_available() { return false; }
Result<Auth> munge_sign(MsgType, std::uint64_t, ByteView) { return fail(refused("ferry was not built with MUNGE")); }
Result<void> munge_verify(const Frame&, std::int64_t) { return fail(refused("ferry was not built with MUNGE")); }

#endif

}  // namespace ferry::proto
