// SPDX-License-Identifier: Apache-2.0
// The `munge` auth scheme (PROTOCOL.md "Authentication", scheme 1): the credential is a
// MUNGE credential (munge_encode) whose payload is SHA-256 of the frame's signing input.
// munged proves the sender's uid/gid; the receiver decodes the credential with its own
// munged (same key: same machine or same MUNGE realm), checks the payload against the
// frame it came with and the uid against the auth block. MUNGE refuses expired (TTL) and
// replayed credentials itself. Part of ferry_proto_auth; without libmunge at build time
// munge_available() is false and the other calls fail with "not built with MUNGE".
#pragma once

#include <cstdint>

#include "ferry/common/result.hpp"
#include "ferry/proto/codec.hpp"

namespace ferry::proto {

// True when this build has MUNGE and munged answers here (one test encode; cached). The
// CLI signs with MUNGE when this holds, unless $FERRY_AUTH=hmac.
bool munge_available();

// An auth block with scheme munge for the calling process's uid.
Result<Auth> munge_sign(MsgType type, std::uint64_t request_id, ByteView payload);

// Ok when f's munge credential decodes, its payload is SHA-256(signing input of f), its uid
// is f's auth uid, and it was issued within kMaxClockSkewNs of now_ns.
Result<void> munge_verify(const Frame& f, std::int64_t now_ns);

}  // namespace ferry::proto
