// SPDX-License-Identifier: Apache-2.0
// Blocking coordinator connection of the CLI (see coordinator_client.hpp).
#include "coordinator_client.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "exit_status.hpp"
#include "ferry/common/fs.hpp"
#include "ferry/proto/auth.hpp"
#include "ferry/proto/munge_auth.hpp"
#include "job_store.hpp"
#include "local_cluster.hpp"

namespace ferry::cli {

namespace {

// The value of `coordinator = ...` in a config file ("" if absent). Lines are KEY = VALUE;
// '#' starts a comment.
std::string config_value(const std::string& path, const std::string& key) {
  auto text = fs::read_file(path);
  if (!text) return "";
  std::istringstream in(*text);
  std::string line;
  auto trim = [](std::string s) {
    auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    if (trim(line.substr(0, eq)) == key) return trim(line.substr(eq + 1));
  }
  return "";
}

UniqueFd connect_tcp(const std::string& address, int* err_out, Error* error) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    *error = Error(errc::protocol, "coordinator address '" + address + "' is not HOST:PORT");
    return {};
  }
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    *error = Error(std::error_code(EHOSTUNREACH, std::system_category()), "resolve " + host + ": " + gai_strerror(rc));
    return {};
  }
  int err = ECONNREFUSED;
  UniqueFd fd;
  for (addrinfo* a = res; a; a = a->ai_next) {
    UniqueFd s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!s) continue;
    if (::connect(s.get(), a->ai_addr, a->ai_addrlen) == 0) {
      fd = std::move(s);
      break;
    }
    err = errno;
  }
  ::freeaddrinfo(res);
  if (!fd) *error = Error(std::error_code(err, std::system_category()), "connect to " + address);
  *err_out = err;
  return fd;
}

}  // namespace

std::optional<std::string> coordinator_for(const std::optional<std::string>& flag, const std::string& store_root,
                                           const std::string& job) {
  if (!store_root.empty()) set_local_home(store_root);
  if (flag && !flag->empty()) return *flag;
  // A job of the local store decides by its record: launched through a coordinator or not.
  if (!job.empty() && !store_root.empty()) {
    if (auto store = store::JobStore::open(store_root)) {
      if (auto rec = store->find(job)) {
        if (rec->coordinator.empty()) return std::nullopt;
        return rec->coordinator;
      }
    }
  }
  if (const char* env = std::getenv("FERRY_COORDINATOR"); env && *env) return std::string(env);
  for (const std::string& file : {local_home() + "/config", std::string("/etc/ferry/ferry.conf")})
    if (auto v = config_value(file, "coordinator"); !v.empty()) return v;
  return std::nullopt;
}

Result<void> CoordinatorClient::probe(const std::string& address) {
  int err = 0;
  Error error;
  UniqueFd fd = connect_tcp(address, &err, &error);
  if (!fd) return fail(error);
  return {};
}

Result<CoordinatorClient> CoordinatorClient::connect(const std::string& address) {
  if (address == kLocalCoordinator) {
    FERRY_TRY(local, local_coordinator());
    return connect(local);
  }
  int err = 0;
  Error error;
  UniqueFd fd = connect_tcp(address, &err, &error);
  if (!fd) return fail(error);
  CoordinatorClient c(std::move(fd), address);
  const char* scheme = std::getenv("FERRY_AUTH");
  c.munge_ = !(scheme && std::string_view(scheme) == "hmac") && proto::munge_available();
  if (!c.munge_) {
    auto secret = proto::load_or_create_user_secret();
    if (!secret) return fail(secret.error().wrap("user secret"));
    c.secret_ = *secret;
  }
  return c;
}

Result<proto::Auth> CoordinatorClient::sign_next(proto::MsgType type, const proto::Bytes& payload) {
  ++next_id_;
  if (munge_) {
    auto auth = proto::munge_sign(type, next_id_, payload);
    if (auth) return auth;
    // munged answered when this command started and no longer does (restarted, stopped by
    // an admin): the coordinator also accepts the user's own secret, so sign with it.
    auto secret = proto::load_or_create_user_secret();
    if (!secret) return fail(auth.error());
    secret_ = *secret;
    munge_ = false;
  }
  return proto::sign(type, next_id_, payload, static_cast<std::uint32_t>(::getuid()), secret_);
}

Result<void> CoordinatorClient::write_all(const proto::Bytes& b) {
  std::size_t off = 0;
  while (off < b.size()) {
    ssize_t n = ::send(fd_.get(), b.data() + off, b.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("send to the coordinator");
    off += static_cast<std::size_t>(n);
  }
  return {};
}

Result<proto::Bytes> CoordinatorClient::read_frame() {
  proto::Bytes buf(4);
  auto read_exact = [&](std::uint8_t* p, std::size_t n) -> Result<void> {
    std::size_t off = 0;
    while (off < n) {
      ssize_t r = ::recv(fd_.get(), p + off, n - off, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return fail_errno("read from the coordinator");
      if (r == 0) return fail(Error(std::error_code(ECONNRESET, std::system_category()), "the coordinator closed the connection"));
      off += static_cast<std::size_t>(r);
    }
    return {};
  };
  FERRY_TRY_VOID(read_exact(buf.data(), 4));
  FERRY_TRY(size, proto::frame_size(buf));
  buf.resize(size);
  FERRY_TRY_VOID(read_exact(buf.data() + 4, size - 4));
  return buf;
}

int exit_for_reply(std::uint16_t code, const std::string& message) {
  switch (code) {
    case static_cast<std::uint16_t>(proto::perr::auth_failed): return kExitPermission;
    case static_cast<std::uint16_t>(proto::perr::bad_state): return kExitBusy;
    case static_cast<std::uint16_t>(proto::perr::agent_lost): return kExitUnsupported;
    default: return exit_status_for(proto::error_from_wire(code, message));
  }
}

int unreachable(const std::string& address, const Error& e) {
  std::cerr << "ferry: cannot reach the coordinator at " << address << ": " << e.message() << "\n";
  return kExitUnsupported;
}

}  // namespace ferry::cli
