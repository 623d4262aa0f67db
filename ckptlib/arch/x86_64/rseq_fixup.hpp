// SPDX-License-Identifier: Apache-2.0
// Restartable sequences: where a thread stopped inside an rseq critical section must resume.
//
// The kernel moves a thread preempted, migrated or signalled inside a critical section to the
// section's abort handler on its way back to user space (kernel/rseq.c, rseq_ip_fixup). A
// ptrace stop comes before that fix-up (the signal/trap work of exit_to_user_mode runs first),
// so a frozen thread can show an ip inside [start_ip, start_ip + post_commit_offset). Its
// image copy must resume at abort_ip, exactly as the kernel would have sent it there: the
// restored thread runs on another CPU after an arbitrary pause, and the remote system calls
// of the checkpoint itself return to user space through that same fix-up, which then finds
// the ip in ferry's gadget and clears rseq_cs, so nothing would abort the section later.
//
//   struct rseq (per thread, registered)        struct rseq_cs (descriptor, 32 bytes)
//   +0  u32 cpu_id_start                         +0  u32 version (0)
//   +4  u32 cpu_id                               +4  u32 flags
//   +8  u64 rseq_cs  -> descriptor or 0          +8  u64 start_ip
//   +16 u32 flags ...                            +16 u64 post_commit_offset
//                                                +24 u64 abort_ip; the u32 before it = signature
#pragma once

#include <cstdint>

namespace ferry::arch {

inline constexpr uint64_t kRseqCsFieldOffset = 8;  // offsetof(struct rseq, rseq_cs)

struct RseqCs {  // struct rseq_cs (include/uapi/linux/rseq.h)
  uint32_t version = 0;
  uint32_t flags = 0;
  uint64_t start_ip = 0;
  uint64_t post_commit_offset = 0;
  uint64_t abort_ip = 0;
};
static_assert(sizeof(RseqCs) == 32);

enum class RseqVerdict {
  outside,  // ip is not in the critical section: resume where it is
  abort,    // ip is inside: resume at abort_ip
  invalid,  // a descriptor the kernel itself would refuse (SIGSEGV): leave the ip alone
};

// The kernel's decision for a thread at ip whose rseq_cs points to cs, given the u32 found
// just before abort_ip and the signature the thread registered rseq with.
RseqVerdict rseq_verdict(const RseqCs& cs, uint64_t ip, uint32_t sig_before_abort, uint32_t registered_sig) noexcept;

}  // namespace ferry::arch
