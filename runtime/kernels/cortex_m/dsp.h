// The Armv7E-M DSP instructions the Cortex-M kernels are built on, as the compiler's ACLE
// intrinsics (arm_acle.h) where the target has them (__ARM_FEATURE_DSP: Cortex-M4, M7, M33 with
// DSP), and as plain C with the same results everywhere else, so the same kernels build, run and
// are tested on the host (bit-exact with the instructions: every lane operation wraps as they do).
//
//   sxtb16(x)          (int16) x.byte0 | (int16) x.byte2 << 16          SXTB16
//   sxtb16_ror8(x)     (int16) x.byte1 | (int16) x.byte3 << 16          SXTB16 ..., ROR #8
//   sxtab16(a, x)      a.lo + (int8) x.byte0 | a.hi + (int8) x.byte2     SXTAB16 (16-bit lanes)
//   sxtab16_ror8(a, x) the same on bytes 1 and 3                        SXTAB16 ..., ROR #8
//   smlad(a, b, c)     c + a.lo * b.lo + a.hi * b.hi                     SMLAD (2 MACs)
//   smlabb / smlatt(a, b, c)   c + a.lo * b.lo / c + a.hi * b.hi         SMLABB / SMLATT
//   pkhbt(a, b)        a.lo | b.lo << 16;  pkhtb(a, b): b.hi >> 16 | a.hi  (GCC emits PKHBT / PKHTB)
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TQ_DSP_NATIVE 1
#else
#define TQ_DSP_NATIVE 0
#endif

namespace tinyquant {
namespace dsp {

// An unaligned 32-bit load (one LDR on Armv7-M, which allows unaligned word loads).
inline uint32_t ld32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void st32(void* p, uint32_t v) { std::memcpy(p, &v, 4); }

// The low / high halfword of a register as a signed value.
inline int32_t lo16(uint32_t v) { return static_cast<int16_t>(v & 0xFFFFu); }
inline int32_t hi16(uint32_t v) { return static_cast<int16_t>(v >> 16); }
inline uint32_t pack16(int32_t lo, int32_t hi) {
  return (static_cast<uint32_t>(lo) & 0xFFFFu) | (static_cast<uint32_t>(hi) << 16);
}

// The C definitions (always compiled: the target's tests compare the instructions with them).
namespace c {
inline uint32_t sxtb16(uint32_t x) {
  return pack16(static_cast<int8_t>(x & 0xFFu), static_cast<int8_t>((x >> 16) & 0xFFu));
}
inline uint32_t sxtb16_ror8(uint32_t x) { return sxtb16(x >> 8 | x << 24); }
inline uint32_t sxtab16(uint32_t a, uint32_t x) {
  const uint32_t e = sxtb16(x);
  return pack16(lo16(a) + lo16(e), hi16(a) + hi16(e));  // each lane wraps to 16 bits
}
inline uint32_t sxtab16_ror8(uint32_t a, uint32_t x) { return sxtab16(a, x >> 8 | x << 24); }
// The sums wrap modulo 2^32 as the instruction's do (computed unsigned: no signed overflow).
inline int32_t smlad(uint32_t a, uint32_t b, int32_t c) {
  return static_cast<int32_t>(static_cast<uint32_t>(c) + static_cast<uint32_t>(lo16(a) * lo16(b)) +
                              static_cast<uint32_t>(hi16(a) * hi16(b)));
}
inline int32_t smlabb(uint32_t a, uint32_t b, int32_t c) {
  return static_cast<int32_t>(static_cast<uint32_t>(c) + static_cast<uint32_t>(lo16(a) * lo16(b)));
}
inline int32_t smlatt(uint32_t a, uint32_t b, int32_t c) {
  return static_cast<int32_t>(static_cast<uint32_t>(c) + static_cast<uint32_t>(hi16(a) * hi16(b)));
}
}  // namespace c

#if TQ_DSP_NATIVE
inline uint32_t sxtb16(uint32_t x) { return static_cast<uint32_t>(__sxtb16(static_cast<int8x4_t>(x))); }
inline uint32_t sxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
inline uint32_t sxtab16(uint32_t a, uint32_t x) {
  return static_cast<uint32_t>(__sxtab16(static_cast<int16x2_t>(a), static_cast<int8x4_t>(x)));
}
inline uint32_t sxtab16_ror8(uint32_t a, uint32_t x) {
  uint32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
  return r;
}
inline int32_t smlad(uint32_t a, uint32_t b, int32_t c) {
  return __smlad(static_cast<int16x2_t>(a), static_cast<int16x2_t>(b), c);
}
inline int32_t smlabb(uint32_t a, uint32_t b, int32_t c) {
  return __smlabb(static_cast<int32_t>(a), static_cast<int32_t>(b), c);
}
inline int32_t smlatt(uint32_t a, uint32_t b, int32_t c) {
  return __smlatt(static_cast<int32_t>(a), static_cast<int32_t>(b), c);
}
#else
using c::sxtb16;
using c::sxtb16_ror8;
using c::sxtab16;
using c::sxtab16_ror8;
using c::smlad;
using c::smlabb;
using c::smlatt;
#endif

inline uint32_t pkhbt(uint32_t a, uint32_t b) { return (a & 0xFFFFu) | (b << 16); }
inline uint32_t pkhtb(uint32_t a, uint32_t b) { return (a & 0xFFFF0000u) | (b >> 16); }

}  // namespace dsp
}  // namespace tinyquant
