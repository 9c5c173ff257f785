// Internal to CKernels: the choice between the AVX2 and portable builds of every kernel
// (MMKD_AVX2, MMKD_DISPATCH), and eight-lane vectors as Swift's SIMD8<Float> (one ymm register in
// the AVX2 builds, two xmm registers in the portable ones).
#ifndef MMKD_EIGHT_LANES_H
#define MMKD_EIGHT_LANES_H

#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

#define LOAD(ptr) ({ v8f v_; memcpy(&v_, (ptr), sizeof v_); v_; })
#define STORE(v, ptr) do { v8f s_ = (v); memcpy((ptr), &s_, sizeof s_); } while (0)
// `v` with lanes set to +0 where `cond` (a lane mask of all ones or zeros) holds.
#define ZERO_WHERE(v, cond) ((v8f)((v8i)(v) & ~(cond)))

// A helper inlined into both builds of its callers (and so compiled for each one's target).
#define MMKD_INLINE static inline __attribute__((always_inline))

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define MMKD_AVX2 __attribute__((target("avx2,fma")))
#define MMKD_DISPATCH(avx2, portable) (mmkd_kernels_use_avx2() ? (avx2) : (portable))
#else
#define MMKD_DISPATCH(avx2, portable) (portable)
#endif

#endif
