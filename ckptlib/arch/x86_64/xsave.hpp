// SPDX-License-Identifier: Apache-2.0
// XSAVE helpers: where things sit in a standard-format XSAVE area, what this CPU supports
// (CPUID leaf 0xD, XCR0 via xgetbv).
//
// Layout of the standard (non-compacted) format as PTRACE_GETREGSET NT_X86_XSTATE returns it:
//   +0    legacy FXSAVE region (x87, MXCSR, xmm0-15)         512 bytes
//   +464  sw_reserved: in a PTRACE buffer the first u64 is the XCR0 mask
//         (USER_XSTATE_XCR0_WORD); in a signal frame it is struct _fpx_sw_bytes instead
//   +512  XSAVE header: u64 xstate_bv (components not in init state), u64 xcomp_bv
//   +576  extended components at CPUID(0xD, i).EBX offsets (AVX 576, opmask 832, ...)
#pragma once

#include <cstdint>
#include <span>

namespace ferry::arch {

inline constexpr uint32_t kXsaveLegacySize = 512;
inline constexpr uint32_t kXsaveSwReservedOffset = 464;
inline constexpr uint32_t kXsaveHeaderOffset = 512;
inline constexpr uint32_t kXsaveMinSize = 576;  // legacy region + header

// XFEATURE bits.
inline constexpr uint64_t kXfeatX87 = 1u << 0, kXfeatSse = 1u << 1, kXfeatAvx = 1u << 2,
                          kXfeatOpmask = 1u << 5, kXfeatZmmHi256 = 1u << 6,
                          kXfeatHi16Zmm = 1u << 7, kXfeatPkru = 1u << 9;

// xstate_bv (u64 at +512); 0 if the buffer is too short.
uint64_t xstate_bv(std::span<const uint8_t> xsave) noexcept;
// The XCR0 word the kernel puts at +464 in a ptrace buffer; 0 if too short.
uint64_t ptrace_xcr0(std::span<const uint8_t> xsave) noexcept;

// CPUID(0xD,0).EBX: XSAVE area size for the features enabled in XCR0 (2432 here).
uint32_t xsave_size() noexcept;
// XCR0 of this CPU (xgetbv(0)); 0 if the OS has not enabled XSAVE.
uint64_t host_xcr0() noexcept;

struct XComponent {
  uint32_t offset = 0;  // in the standard format
  uint32_t size = 0;
};
// Offset and size of component i (2..62) from CPUID(0xD, i); {0,0} if not supported.
XComponent xcomponent(unsigned i) noexcept;

}  // namespace ferry::arch
