// SPDX-License-Identifier: Apache-2.0
// Golden bytes (written by hand from PROTOCOL.md, not produced by the encoder), round trips
// of every message, and refusals of malformed frames.
#include <gtest/gtest.h>

#include <cctype>
#include <string>

#include "ferry/proto/codec.hpp"
#include "ferry/proto/status.hpp"

namespace ferry::proto {
namespace {

// "3d 00 | 00" -> bytes; spaces and '|' are ignored.
Bytes hex(const std::string& s) {
  Bytes out;
  std::string digits;
  for (char c : s)
    if (std::isxdigit(static_cast<unsigned char>(c))) digits += c;
  for (std::size_t i = 0; i + 1 < digits.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
  return out;
}

const std::string kNoAuth = "00 | 00000000 | 0000000000000000 | 0000000000000000 | 00000000";

TEST(Golden, Heartbeat) {
  Heartbeat hb{.session_id = 0x0102030405060708, .seq = 9, .live_ranks = 4};
  Bytes want = hex("3d000000 | 46525259 | 0200 | 0301 | 0700000000000000 | " + kNoAuth +
                   " | 0807060504030201 | 0900000000000000 | 04000000");
  EXPECT_EQ(encode(hb, 7), want);
  auto back = decode(want);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->first.request_id, 7u);
  EXPECT_EQ(std::get<Heartbeat>(back->second), hb);
}

TEST(Golden, AckWithHmacCredential) {
  Ack ack{.code = 102, .message = "late"};
  Auth auth{.scheme = AuthScheme::hmac_sha256, .uid = 1000, .issued_ns = 1, .nonce = 0xAABB,
            .credential = "xy"};
  Bytes want = hex("35000000 | 46525259 | 0200 | 0100 | 2a00000000000000 | "
                   "02 | e8030000 | 0100000000000000 | bbaa000000000000 | 02000000 7879 | "
                   "6600 | 04000000 6c617465");
  EXPECT_EQ(encode(ack, 0x2a, auth), want);
  auto back = decode(want);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->first.auth, auth);
  EXPECT_EQ(std::get<Ack>(back->second), ack);
}

TEST(Golden, RoundStepDump) {
  RoundStep s{.job = "j1", .generation = 3, .round_id = 5, .phase = RoundPhase::dump,
              .ranks = {0, 2}, .generation_dir = "/s", .deadline_ms = 1000, .round_timeout_ms = 5000};
  Bytes want = hex("5a000000 | 46525259 | 0200 | 2001 | 0100000000000000 | " + kNoAuth +
                   " | 02000000 6a31 | 0300000000000000 | 0500000000000000 | 03 | "
                   "02000000 00000000 02000000 | 02000000 2f73 | e8030000 | 88130000");
  EXPECT_EQ(encode(s, 1), want);
  auto back = decode(want);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(std::get<RoundStep>(back->second), s);
}

TEST(Golden, RankExitedWithOptionals) {
  RankExited e{.job = "j", .restart_id = 1, .rank = 3, .pid = 100, .exit_status = std::nullopt,
               .signal = 9, .time_ns = -1};
  Bytes want = hex("4c000000 | 46525259 | 0200 | 4001 | 0000000000000000 | " + kNoAuth +
                   " | 01000000 6a | 0100000000000000 | 03000000 | 64000000 | 00 | 01 09000000 |"
                   " ffffffffffffffff");
  EXPECT_EQ(encode(e, 0), want);
  auto back = decode(want);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(std::get<RankExited>(back->second), e);
}

template <class M>
void round_trip(const M& m) {
  Auth auth{.scheme = AuthScheme::munge, .uid = 42, .issued_ns = 123456789, .nonce = 77,
            .credential = std::string(300, 'c')};
  Bytes b = encode(m, 99, auth);
  auto back = decode(b);
  ASSERT_TRUE(back) << name(M::kType) << ": " << back.error().message();
  EXPECT_EQ(back->first.type, M::kType);
  EXPECT_EQ(back->first.request_id, 99u);
  EXPECT_EQ(back->first.auth, auth);
  ASSERT_TRUE(std::holds_alternative<M>(back->second)) << name(M::kType);
  EXPECT_EQ(std::get<M>(back->second), m) << name(M::kType);
}

RestartRecordWire sample_record() {
  return {.restart_id = 8, .job = "17", .outcome = Outcome::restart_failed,
          .exit_status = std::nullopt, .signal = std::nullopt, .phase = RestartPhase::validate,
          .rank = 2, .node = "n2", .reason = "image rank-2.h5 missing"};
}

TEST(RoundTrip, EveryMessage) {
  round_trip(Ack{.code = 0, .message = ""});
  round_trip(AgentRegister{.node = "n1", .hostname = "host1", .cpus = 64, .agent_pid = 4242,
                           .build = "0.1.0"});
  round_trip(AgentRegisterReply{.code = 0, .message = "ok", .session_id = 5,
                                .heartbeat_interval_ms = 1000, .lost_after_ms = 10000});
  round_trip(Heartbeat{.session_id = 5, .seq = 1, .live_ranks = 3});
  round_trip(LaunchRanks{.job = "3", .uid = 1000, .gid = 1000, .ntasks = 4, .ranks = {1, 3},
                         .argv = {"./app", "-n", ""}, .cwd = "/home/u", .env = {"A=1", "B="}});
  round_trip(LaunchResult{.job = "3", .ranks = {{1, 100, 0, ""}, {3, 0, 1002, "ENOENT"}}});
  round_trip(RoundStep{.job = "3", .generation = 2, .round_id = 9, .phase = RoundPhase::abort,
                       .ranks = {}, .generation_dir = "", .deadline_ms = 0});
  round_trip(RoundStep{.job = "4", .generation = 3, .round_id = 10, .phase = RoundPhase::quiesce,
                       .ranks = {0, 1, 2, 3}, .generation_dir = "/s/gen-3.partial", .deadline_ms = 7000,
                       .round_timeout_ms = 5000});
  round_trip(RoundReply{.job = "3", .generation = 2, .round_id = 9, .phase = RoundPhase::dump,
                        .results = {{0, 0, "", 1 << 20, 5000}, {1, 1028, "no space", 0, 7}}});
  round_trip(RestoreRanks{.job = "3", .generation = 2, .restart_id = 4, .uid = 1, .gid = 2,
                          .ntasks = 2, .generation_dir = "/store/gen-000002", .ranks = {0, 1}});
  round_trip(RestoreResult{.job = "3", .restart_id = 4,
                           .ranks = {{0, 10, 0, RestartPhase::resume, ""},
                                     {1, 0, 5, RestartPhase::validate, "file changed"}}});
  round_trip(RankExited{.job = "3", .restart_id = 0, .rank = 0, .pid = 1, .exit_status = 3,
                        .signal = std::nullopt, .time_ns = 5});
  round_trip(LaunchJob{.name = "sim", .argv = {"a"}, .cwd = "/", .env = {}, .nodes = {"n1", "n2"},
                       .ntasks = 4, .interval_s = 600, .keep = 3});
  round_trip(LaunchJobReply{.code = 0, .message = "", .job = "3"});
  round_trip(LaunchMpi{.job = "3", .restart_id = 2, .generation = 1, .uid = 1, .gid = 2, .ntasks = 4,
                       .argv = {"mpirun", "-np", "4"}, .cwd = "/", .env = {"A=1"}, .run_dir = "/s/r/2"});
  round_trip(MpiRunEnded{.job = "3", .restart_id = 2, .launcher_status = 137,
                         .ranks = {{2, "h2", MpiEnd::aborted, 5, std::nullopt, "", 9},
                                   {1, "h1", MpiEnd::restart_failed, 0, RestartPhase::validate, "corrupt", 10}}});
  round_trip(LaunchMpiJob{.name = "sim", .program = {"./a"}, .mpirun_options = {"--oversubscribe"},
                          .proxy = "/p", .cwd = "/", .env = {}, .nodes = {"n1"}, .ntasks = 4,
                          .interval_s = 0, .keep = 0});
  round_trip(Checkpoint{.job = "sim", .stop = 1});
  round_trip(Checkpoint{.job = "sim", .stop = 0, .timeout_ms = 5000});
  round_trip(CheckpointReply{.code = 103, .message = "agent n2 lost during dump", .generation = 0,
                             .bytes = 0, .duration_ns = 0, .failed_phase = RoundPhase::dump,
                             .failed_rank = 2, .failed_node = "n2"});
  round_trip(Restart{.job = "3", .generation = 0, .nodes = {"n3"},
                     .placement = {{0, "n3"}, {1, "n3"}}, .detach = 1});
  round_trip(RestartReply{.code = 0, .message = "", .restart_id = 4, .generation = 2});
  round_trip(Wait{.restart_id = 4, .timeout_ms = 60000});
  round_trip(WaitReply{.code = 0, .message = "", .record = sample_record()});
  round_trip(Status{.job = ""});
  round_trip(StatusReply{
      .code = 0, .message = "",
      .jobs = {{"3", "sim", 1000, "running", 4, {"n1"}, {{1, 10, 20, 30}}, {sample_record()}}},
      .nodes = {{"n1", 99, 1}}});
  round_trip(DeleteJob{.job = "3"});
}

bool refused(const Bytes& b, const std::string& needle = "") {
  auto r = decode(b);
  if (r) return false;
  EXPECT_TRUE(r.error().is(errc::protocol));
  if (!needle.empty()) {
    EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
  }
  return true;
}

Bytes sample_frame() {
  return encode(RoundReply{.job = "3", .generation = 2, .round_id = 9, .phase = RoundPhase::dump,
                           .results = {{0, 0, "", 1, 2}, {1, 5, "x", 3, 4}}},
                11, Auth{.scheme = AuthScheme::hmac_sha256, .uid = 5, .credential = "k"});
}

TEST(Refuse, EveryTruncation) {
  Bytes full = sample_frame();
  for (std::size_t n = 0; n < full.size(); ++n) {
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_TRUE(refused(cut)) << "prefix " << n;
    // Also with the length field patched to match, so the payload decoder sees the cut.
    if (n >= 4) {
      Writer(cut).patch_u32(0, static_cast<std::uint32_t>(n - 4));
      EXPECT_TRUE(refused(cut)) << "patched prefix " << n;
    }
  }
}

TEST(Refuse, HeaderFields) {
  Bytes b = sample_frame();
  Bytes bad = b;
  bad[4] ^= 1;
  EXPECT_TRUE(refused(bad, "magic"));
  bad = b;
  bad[8] = 1;
  EXPECT_TRUE(refused(bad, "version 1"));
  bad = b;
  bad[10] = 0x77;
  EXPECT_TRUE(refused(bad, "unknown message type 0x0177"));
  bad = b;
  bad.push_back(0);
  EXPECT_TRUE(refused(bad, "length field"));
  Writer(bad).patch_u32(0, static_cast<std::uint32_t>(bad.size() - 4));
  EXPECT_TRUE(refused(bad, "trailing"));
}

TEST(Refuse, OversizedAndBadFields) {
  Bytes huge = hex("ffffffff 46525259 0100 0100");
  auto sz = frame_size(huge);
  ASSERT_FALSE(sz);
  EXPECT_NE(sz.error().message().find("exceeds limit"), std::string::npos);
  EXPECT_TRUE(refused(huge, "exceeds limit"));

  // A string claiming 4 GiB, inside a frame of normal size.
  Bytes ack = encode(Ack{.code = 1, .message = "abc"}, 1);
  Bytes bad = ack;
  std::size_t msg_len_at = ack.size() - 3 - 4;
  Writer(bad).patch_u32(msg_len_at, 0xfffffff0u);
  EXPECT_TRUE(refused(bad, "exceeds limit"));
  // A count larger than the bytes left is refused before allocating.
  Bytes rs = encode(RoundStep{.job = "", .ranks = {1}}, 1);
  std::size_t count_at = 12 + 8 + 25 + 4 + 8 + 8 + 1;
  Writer(rs).patch_u32(count_at, 0x40000000u);
  EXPECT_TRUE(refused(rs, "count"));
  // Enum and optional flags out of range.
  Bytes step = encode(RoundStep{.phase = RoundPhase::quiesce}, 1);
  step[12 + 8 + 25 + 4 + 16] = 9;
  EXPECT_TRUE(refused(step, "enum value 9"));
  Bytes ex = encode(RankExited{.job = ""}, 1);
  ex[12 + 8 + 25 + 4 + 8 + 4 + 4] = 2;
  EXPECT_TRUE(refused(ex, "optional flag 2"));
  // Credential longer than kMaxCredential.
  Bytes cred = encode(Ack{}, 1, Auth{.credential = std::string(kMaxCredential + 1, 'x')});
  EXPECT_TRUE(refused(cred, "exceeds limit"));
}

TEST(Refuse, WrongTypeForDecodePayload) {
  Bytes b = encode(Heartbeat{}, 1);
  auto f = decode_frame(b);
  ASSERT_TRUE(f);
  auto m = decode_payload<Ack>(*f);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message().find("expected ACK, got HEARTBEAT"), std::string::npos);
}

TEST(Signing, CoversEnvelopeAndPayloadButNotCredential) {
  Auth a{.scheme = AuthScheme::hmac_sha256, .uid = 1000, .issued_ns = 5, .nonce = 6,
         .credential = "sig1"};
  Bytes f1 = encode(Checkpoint{.job = "3"}, 1, a);
  a.credential = "other";
  Bytes f2 = encode(Checkpoint{.job = "3"}, 1, a);
  auto d1 = decode_frame(f1);
  auto d2 = decode_frame(f2);
  ASSERT_TRUE(d1 && d2);
  EXPECT_EQ(signing_input(d1->env, d1->payload), signing_input(d2->env, d2->payload));
  Bytes f3 = encode(Checkpoint{.job = "4"}, 1, a);
  auto d3 = decode_frame(f3);
  ASSERT_TRUE(d3);
  EXPECT_NE(signing_input(d1->env, d1->payload), signing_input(d3->env, d3->payload));
  Bytes want = hex("6665727279 2d617574682d7631 | 0200 | 0302 | 0100000000000000 | 02 | "
                   "e8030000 | 0500000000000000 | 0600000000000000 | 01000000 33 00 | 00000000");
  EXPECT_EQ(signing_input(d1->env, d1->payload), want);
}

TEST(Status, WireCodesRoundTrip) {
  EXPECT_EQ(to_wire({}), 0);
  EXPECT_EQ(to_wire(make_error_code(errc::image_corrupt)), 1);
  EXPECT_EQ(to_wire(make_error_code(perr::timeout)), 102);
  EXPECT_EQ(to_wire(std::error_code(ENOSPC, std::system_category())), 1000 + ENOSPC);
  EXPECT_EQ(to_wire(std::make_error_code(std::errc::io_error)), 1000 + EIO);
  EXPECT_EQ(from_wire(1000 + ENOSPC), std::error_code(ENOSPC, std::system_category()));
  EXPECT_EQ(from_wire(103), make_error_code(perr::agent_lost));
  EXPECT_EQ(from_wire(8), make_error_code(errc::not_found));
  EXPECT_EQ(from_wire(500), make_error_code(perr::internal));
  EXPECT_EQ(error_from_wire(102, "dump n2").message(), "dump n2: timed out");
}

}  // namespace
}  // namespace ferry::proto
