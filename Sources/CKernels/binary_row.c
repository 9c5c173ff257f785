// Hot element-wise loops with a run-time choice between an AVX2 build and a portable one, so that
// the package needs no CPU-specific build flag (see CKernels.h).
#include "CKernels.h"
#include "eight_lanes.h"

#include <stdatomic.h>
#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

// The loops, written once and compiled twice. Each case is a simple counted loop over restrict-free
// pointers: the compiler vectorises it at the width of the build's target (with a run-time check
// for overlapping operands), one IEEE operation per value.
#define MMKD_BINARY_ROW_BODY                                                                       \
    if (ia == 1 && ib == 1) {                                                                      \
        switch (op) {                                                                              \
        case MMKD_BINARY_ADD: for (ptrdiff_t i = 0; i < n; i++) out[i] = a[i] + b[i]; return 1;    \
        case MMKD_BINARY_SUB: for (ptrdiff_t i = 0; i < n; i++) out[i] = a[i] - b[i]; return 1;    \
        case MMKD_BINARY_MUL: for (ptrdiff_t i = 0; i < n; i++) out[i] = a[i] * b[i]; return 1;    \
        case MMKD_BINARY_DIV: for (ptrdiff_t i = 0; i < n; i++) out[i] = a[i] / b[i]; return 1;    \
        case MMKD_BINARY_MASK_POSITIVE:                                                            \
            for (ptrdiff_t i = 0; i < n; i++) out[i] = b[i] > 0 ? a[i] : 0;                        \
            return 1;                                                                              \
        default: return 0;                                                                         \
        }                                                                                          \
    }                                                                                              \
    if (ia == 1 && ib == 0) {                                                                      \
        const float s = b[0];                                                                      \
        switch (op) {                                                                              \
        case MMKD_BINARY_ADD: for (ptrdiff_t i = 0; i < n; i++) out[i] = a[i] + s; return 1;       \
        case MMKD_BINARY_SUB: for (ptrdiff_t i = 0; i < n; i++) out[i] = a[i] - s; return 1;       \
        case MMKD_BINARY_MUL: for (ptrdiff_t i = 0; i < n; i++) out[i] = a[i] * s; return 1;       \
        case MMKD_BINARY_DIV: for (ptrdiff_t i = 0; i < n; i++) out[i] = a[i] / s; return 1;       \
        default: return 0;                                                                         \
        }                                                                                          \
    }                                                                                              \
    if (ia == 0 && ib == 1) {                                                                      \
        const float s = a[0];                                                                      \
        switch (op) {                                                                              \
        case MMKD_BINARY_ADD: for (ptrdiff_t i = 0; i < n; i++) out[i] = s + b[i]; return 1;       \
        case MMKD_BINARY_SUB: for (ptrdiff_t i = 0; i < n; i++) out[i] = s - b[i]; return 1;       \
        case MMKD_BINARY_MUL: for (ptrdiff_t i = 0; i < n; i++) out[i] = s * b[i]; return 1;       \
        default: return 0;                                                                         \
        }                                                                                          \
    }                                                                                              \
    return 0;

static int binary_row_portable(int op, const float *a, ptrdiff_t ia, const float *b, ptrdiff_t ib, float *out, ptrdiff_t n) {
    MMKD_BINARY_ROW_BODY
}

#ifdef MMKD_AVX2
MMKD_AVX2
static int binary_row_avx2(int op, const float *a, ptrdiff_t ia, const float *b, ptrdiff_t ib, float *out, ptrdiff_t n) {
    MMKD_BINARY_ROW_BODY
}
#endif

int mmkd_kernels_use_avx2(void) {
    static atomic_int choice = -1;  // -1: not yet decided
    int c = atomic_load_explicit(&choice, memory_order_relaxed);
    if (c < 0) {
        c = 0;
#ifdef MMKD_AVX2
        const char *portable = getenv("MMKD_PORTABLE_KERNELS");
        int forced = portable != NULL && portable[0] != '\0' && !(portable[0] == '0' && portable[1] == '\0');
        __builtin_cpu_init();
        c = !forced && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
        atomic_store_explicit(&choice, c, memory_order_relaxed);
    }
    return c;
}

int mmkd_binary_row(int op, const float *a, ptrdiff_t ia, const float *b, ptrdiff_t ib, float *out, ptrdiff_t n) {
    return MMKD_DISPATCH(binary_row_avx2, binary_row_portable)(op, a, ia, b, ib, out, n);
}
