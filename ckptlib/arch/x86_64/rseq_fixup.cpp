// SPDX-License-Identifier: Apache-2.0
// The rseq critical-section decision (see rseq_fixup.hpp), checks in the kernel's order
// (kernel/rseq.c: rseq_get_rseq_cs, then rseq_ip_fixup).
#include "arch/x86_64/rseq_fixup.hpp"

namespace ferry::arch {

namespace {
constexpr uint64_t kUserSpaceEnd = 0x00007ffffffff000ull;  // TASK_SIZE_MAX with 4-level paging
}

RseqVerdict rseq_verdict(const RseqCs& cs, uint64_t ip, uint32_t sig_before_abort, uint32_t registered_sig) noexcept {
  if (cs.version != 0) return RseqVerdict::invalid;
  if (cs.start_ip >= kUserSpaceEnd || cs.start_ip + cs.post_commit_offset < cs.start_ip ||
      cs.start_ip + cs.post_commit_offset >= kUserSpaceEnd || cs.abort_ip >= kUserSpaceEnd)
    return RseqVerdict::invalid;
  if (cs.abort_ip - cs.start_ip < cs.post_commit_offset) return RseqVerdict::invalid;  // abort inside
  if (ip - cs.start_ip >= cs.post_commit_offset) return RseqVerdict::outside;
  if (sig_before_abort != registered_sig) return RseqVerdict::invalid;
  return RseqVerdict::abort;
}

}  // namespace ferry::arch
