// SPDX-License-Identifier: Apache-2.0
// Resume points of a frozen thread that need its memory (see threads_fixups.hpp): the rseq
// descriptor and signature word, the code bytes before a restart_syscall.
#include "threads_fixups.hpp"

#include "arch/x86_64/rseq_fixup.hpp"
#include "arch/x86_64/syscall_restart.hpp"

namespace ferry::capture {

namespace {
template <typename T>
bool read(const ptrace::Tracee& t, uint64_t addr, T& out) {
  return static_cast<bool>(t.read_memory(addr, {reinterpret_cast<std::byte*>(&out), sizeof out}));
}
}  // namespace

uint64_t rseq_abort_ip(const ptrace::Tracee& t, const user_regs_struct& regs, uint64_t rseq_addr,
                       uint32_t rseq_sig) {
  if (rseq_addr == 0) return 0;
  if (static_cast<int64_t>(regs.orig_rax) >= 0) return 0;  // in a syscall: not in a section
  uint64_t cs_ptr = 0;
  if (!read(t, rseq_addr + arch::kRseqCsFieldOffset, cs_ptr) || cs_ptr == 0) return 0;
  arch::RseqCs cs;
  if (!read(t, cs_ptr, cs)) return 0;
  uint32_t sig = 0;
  if (cs.abort_ip < 4 || !read(t, cs.abort_ip - 4, sig)) return 0;
  return arch::rseq_verdict(cs, regs.rip, sig, rseq_sig) == arch::RseqVerdict::abort ? cs.abort_ip : 0;
}

bool name_restarted_call(const ptrace::Tracee& t, user_regs_struct& regs) {
  if (regs.orig_rax != arch::kNrRestartSyscall || !arch::in_restartable_syscall(regs)) return false;
  arch::CodeBeforeSyscall code{};
  if (regs.rip < code.size() || !read(t, regs.rip - code.size(), code)) return false;
  uint64_t nr = arch::restarted_call_from_code(code);
  if (nr == 0) return false;
  regs.orig_rax = nr;
  return true;
}

}  // namespace ferry::capture
