// SPDX-License-Identifier: Apache-2.0
// Process attributes set before the point of no return, and the PONR itself: tearing down the
// child's inherited address space, moving the vDSO and staged regions into place, the mm/auxv,
// per-thread kernel state, and finally the thread's registers (see restore.cpp, Algorithm).
#include <fcntl.h>
#include <linux/prctl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "arch/x86_64/regs.hpp"
#include "arch/x86_64/xsave.hpp"
#include "restore/steps.hpp"

namespace ferry::restore {

namespace {

struct KernelSigaction {  // struct sigaction as rt_sigaction(2) reads it on x86-64
  uint64_t handler, flags, restorer, mask;
};

struct PrctlMmMap {  // struct prctl_mm_map (include/uapi/linux/prctl.h), 104 bytes
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint64_t auxv;
  uint32_t auxv_size;
  uint32_t exe_fd;
};
static_assert(sizeof(PrctlMmMap) == 104);

constexpr uint64_t kAtSysinfoEhdr = 33;
constexpr uint64_t kAuxvOffset = 128;  // auxv copy in the scratch page, after the mm map

template <typename T>
std::span<const std::byte> bytes_of(const T& v) {
  return {reinterpret_cast<const std::byte*>(&v), sizeof v};
}

}  // namespace

Result<void> restore_process_attrs(ChildBuilder& b, const image::ProcessImage& img) {
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    KernelSigaction act{};  // SIG_DFL unless the image says otherwise
    for (const auto& s : img.signals) {
      if (s.signo == sig) act = {s.handler, s.flags, s.restorer, s.mask};
    }
    FERRY_TRY(p, b.put(bytes_of(act)));
    FERRY_TRY_VOID(b.call("set disposition of signal " + std::to_string(sig), SYS_rt_sigaction,
                          {static_cast<uint64_t>(sig), p, 0, 8}));
  }
  const auto& pi = img.process;
  FERRY_TRY_VOID(b.call("set umask", SYS_umask, {pi.umask & 0777u}));
  if (!pi.cwd.empty()) {
    FERRY_TRY(p, b.put_string(pi.cwd));
    FERRY_TRY_VOID(b.call("change directory to " + pi.cwd, SYS_chdir, {p}));
  }
  if (!pi.comm.empty()) {
    FERRY_TRY(p, b.put_string(pi.comm.substr(0, 15)));
    FERRY_TRY_VOID(b.call("set name " + pi.comm, SYS_prctl, {PR_SET_NAME, p, 0, 0, 0}));
  }
  // The bootstrap child asked for SIGKILL when its parent dies; the program never did.
  FERRY_TRY_VOID(b.call("clear parent-death signal", SYS_prctl, {PR_SET_PDEATHSIG, 0, 0, 0, 0}));
  FERRY_TRY_VOID(b.call("set personality " + hex(pi.personality), SYS_personality, {pi.personality}));
  return {};
}

Result<void> tear_down_and_place(ChildBuilder& b, const image::ProcessImage& img,
                                 const AddressPlan& plan, uint64_t page, const RestoreOptions& opt) {
  // 1. Unmap everything the child inherited from us except what restore still needs.
  FERRY_TRY(maps, read_maps(b.pid()));
  VdsoTriple live = live_vdso(maps);
  std::vector<Range> keep = {{plan.gadget, plan.gadget + kGadgetPages * page},
                             live.vvar, live.vvar_vclock, live.vdso};
  for (size_t i = 0; i < img.regions.size(); ++i) {
    const auto& r = img.regions[i];
    if (plan.build_addr[i] != 0) keep.push_back({plan.build_addr[i], plan.build_addr[i] + (r.end - r.start)});
  }
  std::vector<Range> mapped;
  for (const auto& m : maps) mapped.push_back(m.range);
  auto unmap = subtract(mapped, keep);
  for (const auto& u : unmap)
    FERRY_TRY_VOID(b.call("munmap " + hex(u.start) + "-" + hex(u.end), SYS_munmap, {u.start, u.size()}));
  if (opt.log) opt.log("restore: point of no return: unmapped " + std::to_string(unmap.size()) + " old ranges");

  // 2. The live vDSO triple onto the image's addresses (glibc cached pointers into it).
  VdsoTriple target = image_vdso(img.regions);
  if (target.present()) {
    FERRY_TRY(moves, plan_vdso_moves(live, target, plan.vdso_temp));
    for (const auto& m : moves)
      FERRY_TRY_VOID(b.call("mremap " + m.what + " to " + hex(m.to), SYS_mremap,
                            {m.from, m.len, m.len, MREMAP_MAYMOVE | MREMAP_FIXED, m.to}));
  } else {
    for (const Range* r : {&live.vvar, &live.vvar_vclock, &live.vdso})
      if (r->size()) FERRY_TRY_VOID(b.call("munmap vdso part " + hex(r->start), SYS_munmap, {r->start, r->size()}));
  }

  // 3. Staged regions onto their final addresses (free now: nothing else is left there).
  for (size_t i = 0; i < img.regions.size(); ++i) {
    if (!plan.staged[i]) continue;
    const auto& r = img.regions[i];
    uint64_t len = r.end - r.start;
    FERRY_TRY_VOID(b.call("mremap staged region " + hex(plan.build_addr[i]) + " to " + hex(r.start),
                          SYS_mremap, {plan.build_addr[i], len, len, MREMAP_MAYMOVE | MREMAP_FIXED, r.start}));
  }

  // 4. Final protections.
  for (const auto& r : img.regions) {
    if (is_special(r.kind)) continue;
    FERRY_TRY_VOID(b.call("mprotect " + hex(r.start) + "-" + hex(r.end) + " to " + hex(r.prot),
                          SYS_mprotect, {r.start, r.end - r.start, r.prot}));
  }

  // 5. mm fields and auxv (no capability needed while exe_fd is -1).
  const auto& pi = img.process;
  if (pi.start_code != 0 || pi.end_code != 0) {
    std::vector<uint64_t> auxv = pi.auxv;
    for (size_t i = 0; i + 1 < auxv.size(); i += 2)
      if (auxv[i] == kAtSysinfoEhdr && target.present()) auxv[i + 1] = target.vdso.start;
    uint64_t auxv_bytes = auxv.size() * sizeof(uint64_t);
    if (kAuxvOffset + auxv_bytes > b.scratch_size())
      return fail(errc::restore_failed, "set mm map: auxv of " + std::to_string(auxv_bytes) + " bytes is too large");
    FERRY_TRY(auxv_at, b.put({reinterpret_cast<const std::byte*>(auxv.data()), auxv_bytes}, kAuxvOffset));
    PrctlMmMap mm{pi.start_code, pi.end_code, pi.start_data, pi.end_data, pi.start_brk, pi.brk,
                  pi.start_stack, pi.arg_start, pi.arg_end, pi.env_start, pi.env_end,
                  auxv.empty() ? 0 : auxv_at, static_cast<uint32_t>(auxv_bytes), ~uint32_t{0}};
    FERRY_TRY(p, b.put(bytes_of(mm)));
    FERRY_TRY_VOID(b.call("set mm map (brk " + hex(pi.brk) + ")", SYS_prctl,
                          {PR_SET_MM, PR_SET_MM_MAP, p, sizeof mm, 0}));
    // /proc/PID/exe: best effort (needs CAP_CHECKPOINT_RESTORE and no old exe mapped).
    if (!pi.exe.empty()) {
      auto fd = b.open(pi.exe, O_RDONLY);
      if (fd) {
        mm.exe_fd = static_cast<uint32_t>(*fd);
        if (b.put(bytes_of(mm)))
          (void)b.call("set exe", SYS_prctl, {PR_SET_MM, PR_SET_MM_MAP, p, sizeof mm, 0});
        (void)b.close(*fd);
      }
    }
  }

  // 6. The leader's per-thread kernel state that points into restored memory.
  FERRY_TRY_VOID(restore_thread_kernel_state(b, img.threads[0]));

  // 7. Soft rlimits, never above the hard limit we have (no CAP_SYS_RESOURCE to raise it).
  for (const auto& rl : pi.rlimits) {
    struct rlimit cur {};
    if (::prlimit(b.pid(), static_cast<__rlimit_resource>(rl.resource), nullptr, &cur) != 0) continue;
    struct rlimit want = cur;
    want.rlim_cur = std::min<rlim_t>(rl.soft, cur.rlim_max);
    if (want.rlim_cur != rl.soft && opt.log)
      opt.log("restore: soft limit " + std::to_string(rl.resource) + " capped at the hard limit " +
              std::to_string(cur.rlim_max));
    if (::prlimit(b.pid(), static_cast<__rlimit_resource>(rl.resource), &want, nullptr) != 0)
      return fail_errno("set soft rlimit " + std::to_string(rl.resource));
  }

  // 8. A ferry_checkpoint() caller learns it was restarted.
  if (img.self_checkpoint) {
    int32_t v = image::kSelfRestarted;
    FERRY_TRY_VOID(b.tracee().write_memory(img.self_checkpoint->flag_addr, bytes_of(v)));
  }
  return {};
}

Result<std::vector<uint8_t>> xstate_for_host(std::span<const uint8_t> image_xsave,
                                             std::span<const uint8_t> host_xsave) {
  if (image_xsave.size() > host_xsave.size())
    return fail(errc::cpu_incompatible, "convert XSAVE area: image's " + std::to_string(image_xsave.size()) +
                                            " bytes exceed this CPU's " + std::to_string(host_xsave.size()));
  // The kernel wants exactly its own size; components beyond the image's are not in
  // xstate_bv, so zero bytes there are never read. xstate_bv itself is kept unchanged.
  std::vector<uint8_t> out(host_xsave.size(), 0);
  std::memcpy(out.data(), image_xsave.data(), image_xsave.size());
  // sw_reserved carries the XCR0 word in a ptrace buffer: use the live one.
  std::memcpy(out.data() + arch::kXsaveSwReservedOffset, host_xsave.data() + arch::kXsaveSwReservedOffset,
              arch::kXsaveLegacySize - arch::kXsaveSwReservedOffset);
  return out;
}

Result<void> finish_thread(ChildBuilder& b, const image::ProcessImage& img, uint64_t gadget, uint64_t page) {
  FERRY_TRY_VOID(b.call("munmap the restore gadget " + hex(gadget), SYS_munmap, {gadget, kGadgetPages * page}));
  // The thread now sits in the syscall-exit stop of that munmap, rip inside the unmapped gadget.
  return load_final_state(b.tracee(), img.threads[0]);
}

}  // namespace ferry::restore
