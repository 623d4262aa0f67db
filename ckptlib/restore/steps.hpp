// SPDX-License-Identifier: Apache-2.0
// The steps restore.cpp strings together (internal to ckptlib/restore). Pre-PONR steps only
// add to the child; the PONR steps in ponr.cpp tear its old address space down.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"
#include "restore/address_plan.hpp"
#include "restore/child_builder.hpp"
#include "restore/restore.hpp"

namespace ferry::restore {

// Pre-PONR (child_builder.cpp): every non-special region at plan.build_addr, writable.
Result<void> build_regions(ChildBuilder& b, image::ImageSource& src, const AddressPlan& plan,
                           const RestoreOptions& opt);
// Pre-PONR (page_filler.cpp): page-run bytes into the regions just built, read in storage
// order in kCopyBatch batches while a second thread places them (UFFDIO_COPY into private
// anonymous regions, process_vm_writev elsewhere); dense anonymous regions in huge pages.
Result<void> write_pages(ChildBuilder& b, image::ImageSource& src, const AddressPlan& plan, uint64_t page,
                         const RestoreOptions& opt);
// Where image address addr lives in the child before the PONR (0 if in no built region).
uint64_t child_address(const image::ProcessImage& img, const AddressPlan& plan, uint64_t addr);

// Pre-PONR (files_restore.cpp): every fd of the image at its number, with flags and offset;
// fds 0-2 not in the image are closed, inherit ones left alone.
Result<void> restore_fds(ChildBuilder& b, image::ImageSource& src, const RestoreOptions& opt);

// Pre-PONR (ponr.cpp): signal dispositions, umask, cwd, comm, personality, parent-death signal.
Result<void> restore_process_attrs(ChildBuilder& b, const image::ProcessImage& img);

// The point of no return and after (ponr.cpp). Any failure here is fatal for the child.
Result<void> tear_down_and_place(ChildBuilder& b, const image::ProcessImage& img, const AddressPlan& plan,
                                 uint64_t page, const RestoreOptions& opt);
// The image's standard-format XSAVE area padded to the live kernel's size (PTRACE_SETREGSET
// NT_X86_XSTATE takes exactly that size); xstate_bv unchanged.
Result<std::vector<uint8_t>> xstate_for_host(std::span<const uint8_t> image_xsave,
                                             std::span<const uint8_t> host_xsave);
// Last steps: munmap the gadget, then the leader's registers, XSAVE and signal mask; the
// thread is left stopped at its syscall-exit stop, ready to be detached.
Result<void> finish_thread(ChildBuilder& b, const image::ProcessImage& img, uint64_t gadget, uint64_t page);

// threads_restore.cpp (after the PONR):
// sigaltstack, robust list, clear-tid address and rseq of `t`, by remote calls in b's thread.
Result<void> restore_thread_kernel_state(ChildBuilder& b, const image::Thread& t);
// XSAVE (padded for this host), registers (orig_rax = -1) and signal mask of `t`.
Result<void> load_final_state(ptrace::Tracee& tr, const image::Thread& t);
// Creates image threads 1..n-1 by clone3 in the leader (set_tid = image tid if same_tids),
// each with its kernel state (and no capabilities left when drop_caps) and final CPU state,
// left stopped. Every thread created is appended to `out` (also on failure, so the caller
// can kill and collect them).
Result<void> create_threads(ChildBuilder& b, const image::ProcessImage& img, bool same_tids,
                            std::vector<ptrace::Tracee>& out, bool drop_caps = false);
// capset(empty permitted, effective and inheritable sets) in b's thread (Spawner::
// spawned_child_drops_capabilities); the leader does it last, after it created everything.
Result<void> drop_capabilities(ChildBuilder& b);

}  // namespace ferry::restore
