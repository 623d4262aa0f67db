// SPDX-License-Identifier: Apache-2.0
// Frames: encode a message with its envelope (request id + credential), split a byte stream
// into frames, and decode untrusted frames into messages. Every decode failure is an
// errc::protocol Error; nothing here throws, asserts on input, or reads past a buffer.
//
//   offset  size  field
//   0       4     length   bytes after this field (8 + body), 8 + 33 <= length <= 8 + kMaxFrameBody
//   4       4     magic    kMagic ("FRRY" on the wire)
//   8       2     version  kVersion
//   10      2     type     MsgType
//   12      8     request_id   replies echo the request's id
//   20      ...   auth     scheme u8, uid u32, issued_ns u64, nonce u64, credential (u32 len + bytes)
//   ...     ...   payload  the message's FERRY_PROTO_FIELDS in order
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/proto/messages.hpp"
#include "ferry/proto/wire.hpp"

namespace ferry::proto {

inline constexpr std::uint32_t kMagic = 0x59525246;  // bytes 'F' 'R' 'R' 'Y'
inline constexpr std::uint16_t kVersion = 2;
inline constexpr std::size_t kHeaderBytes = 12;      // length, magic, version, type
// request_id + the smallest auth block (empty credential).
inline constexpr std::size_t kMinBodyBytes = 8 + 1 + 4 + 8 + 8 + 4;

struct Auth {
  AuthScheme scheme = AuthScheme::none;
  std::uint32_t uid = 0;            // the uid the sender claims; the credential proves it
  std::int64_t issued_ns = 0;       // CLOCK_REALTIME; receivers refuse stale credentials
  std::uint64_t nonce = 0;          // random; receivers refuse a (uid, nonce) seen recently
  std::string credential;           // MUNGE credential, or 32-byte HMAC-SHA256
  bool operator==(const Auth&) const = default;
};

struct Envelope {
  MsgType type = MsgType::ack;
  std::uint64_t request_id = 0;
  Auth auth;
  bool operator==(const Envelope&) const = default;
};

// A decoded frame header and envelope; payload points into the caller's buffer.
struct Frame {
  Envelope env;
  ByteView payload;
};

// Given the first 4 bytes of a frame, the total size of the frame (including those 4 bytes),
// or an error when the length is outside the limits: the stream is then unusable.
Result<std::size_t> frame_size(ByteView first4);
// Parses header and envelope of exactly one whole frame (bytes.size() == frame_size()).
Result<Frame> decode_frame(ByteView bytes);

// The bytes a credential signs (PROTOCOL.md "Authentication"): a domain tag, version, type,
// request id, scheme, uid, issued_ns, nonce and the payload. The credential itself is not
// signed.
Bytes signing_input(const Envelope& env, ByteView payload);

namespace detail {

template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};
template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

// Smallest encoded size of one T, so Reader::count() can refuse impossible counts.
template <class T>
constexpr std::size_t min_size() {
  if constexpr (std::is_enum_v<T>) return 1;
  else if constexpr (std::is_integral_v<T>) return sizeof(T);
  else if constexpr (std::is_same_v<T, std::string>) return 4;
  else return 1;  // vectors (4), optionals (1), records (>= 1)
}

struct Encoder {
  Writer& w;
  template <class... T>
  void operator()(const T&... xs) {
    (put(xs), ...);
  }
  template <class T>
  void put(const T& x) {
    if constexpr (std::is_enum_v<T>) {
      static_assert(sizeof(T) == 1, "wire enums are one byte");
      w.u8(static_cast<std::uint8_t>(x));
    } else if constexpr (std::is_same_v<T, std::uint8_t>) w.u8(x);
    else if constexpr (std::is_same_v<T, std::uint16_t>) w.u16(x);
    else if constexpr (std::is_same_v<T, std::uint32_t>) w.u32(x);
    else if constexpr (std::is_same_v<T, std::uint64_t>) w.u64(x);
    else if constexpr (std::is_same_v<T, std::int32_t>) w.i32(x);
    else if constexpr (std::is_same_v<T, std::int64_t>) w.i64(x);
    else if constexpr (std::is_same_v<T, std::string>) w.str(x);
    else if constexpr (IsVector<T>::value) {
      w.u32(static_cast<std::uint32_t>(x.size()));
      for (const auto& e : x) put(e);
    } else if constexpr (IsOptional<T>::value) {
      w.u8(x.has_value() ? 1 : 0);
      if (x) put(*x);
    } else {
      x.fields(*this);
    }
  }
};

struct Decoder {
  Reader& r;
  template <class... T>
  void operator()(T&... xs) {
    (get(xs), ...);
  }
  template <class T>
  void get(T& x) {
    if (!r.ok()) return;
    if constexpr (std::is_enum_v<T>) {
      x = static_cast<T>(r.u8());
      if (r.ok() && !wire_valid(x))
        r.fail("enum value " + std::to_string(static_cast<int>(x)) + " out of range at byte " +
               std::to_string(r.position() - 1));
    } else if constexpr (std::is_same_v<T, std::uint8_t>) x = r.u8();
    else if constexpr (std::is_same_v<T, std::uint16_t>) x = r.u16();
    else if constexpr (std::is_same_v<T, std::uint32_t>) x = r.u32();
    else if constexpr (std::is_same_v<T, std::uint64_t>) x = r.u64();
    else if constexpr (std::is_same_v<T, std::int32_t>) x = r.i32();
    else if constexpr (std::is_same_v<T, std::int64_t>) x = r.i64();
    else if constexpr (std::is_same_v<T, std::string>) x = r.str();
    else if constexpr (IsVector<T>::value) {
      using E = typename T::value_type;
      std::uint32_t n = r.count(min_size<E>());
      x.clear();
      x.reserve(n);
      for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
        E e{};
        get(e);
        x.push_back(std::move(e));
      }
    } else if constexpr (IsOptional<T>::value) {
      std::uint8_t present = r.u8();
      if (present > 1) r.fail("optional flag " + std::to_string(present) + " is not 0 or 1");
      if (!r.ok() || present == 0) {
        x.reset();
        return;
      }
      typename T::value_type v{};
      get(v);
      x = std::move(v);
    } else {
      x.fields(*this);
    }
  }
};

}  // namespace detail

// Encodes msg as one whole frame.
template <class M>
Bytes encode(const M& msg, std::uint64_t request_id, const Auth& auth = {}) {
  Bytes out;
  Writer w(out);
  w.u32(0);  // patched below
  w.u32(kMagic);
  w.u16(kVersion);
  w.u16(static_cast<std::uint16_t>(M::kType));
  w.u64(request_id);
  detail::Encoder enc{w};
  enc.put(auth.scheme);
  w.u32(auth.uid);
  w.i64(auth.issued_ns);
  w.u64(auth.nonce);
  w.str(auth.credential);
  msg.fields(enc);
  w.patch_u32(0, static_cast<std::uint32_t>(out.size() - 4));
  return out;
}

// Encodes only the payload of msg (what signing_input() covers).
template <class M>
Bytes encode_payload(const M& msg) {
  Bytes out;
  Writer w(out);
  detail::Encoder enc{w};
  msg.fields(enc);
  return out;
}

// Decodes the payload of a frame whose type is M::kType; trailing bytes are an error.
template <class M>
Result<M> decode_payload(const Frame& f) {
  if (f.env.type != M::kType)
    return fail(errc::protocol, "decode: expected " + std::string(name(M::kType)) + ", got " +
                                    std::string(name(f.env.type)));
  Reader r(f.payload);
  detail::Decoder dec{r};
  M m{};
  m.fields(dec);
  if (r.ok() && r.remaining() != 0)
    r.fail(std::to_string(r.remaining()) + " trailing bytes");
  if (!r.ok()) return fail(errc::protocol, "decode " + std::string(name(M::kType)) + ": " + r.error());
  return m;
}

using AnyMessage =
    std::variant<Ack, AgentRegister, AgentRegisterReply, Heartbeat, LaunchRanks, LaunchResult,
                 RoundStep, RoundReply, RestoreRanks, RestoreResult, RankExited, LaunchMpi, MpiRunEnded, LaunchMpiJob, LaunchJob,
                 LaunchJobReply, Checkpoint, CheckpointReply, Restart, RestartReply, Wait,
                 WaitReply, Status, StatusReply, DeleteJob>;

// Decodes whichever message the frame holds.
Result<AnyMessage> decode_message(const Frame& f);
// decode_frame + decode_message on one whole frame.
Result<std::pair<Envelope, AnyMessage>> decode(ByteView bytes);

}  // namespace ferry::proto
