// Batch norm's per-channel loops over eight-lane vectors, built for AVX2 and portably (see
// CKernels.h). Each lane is its own sequence of IEEE operations, exactly as the Swift SIMD8 code
// they replace: no contraction into fused multiply-adds, no reassociation.
#include "CKernels.h"
#include "eight_lanes.h"

#pragma STDC FP_CONTRACT OFF

#define MMKD_REDUCE_LOOPS                                                                          \
    v8f a = {0}, c = {0};                                                                          \
    ptrdiff_t at = 0;                                                                              \
    switch (mode) {                                                                                \
    case 0:                                                                                        \
        for (ptrdiff_t i = 0; i < count; i++, at += step) a += LOAD(p + at);                       \
        break;                                                                                     \
    case 1:                                                                                        \
        for (ptrdiff_t i = 0; i < count; i++, at += step) { v8f d = LOAD(p + at) - sh; a += d; c += d * d; } \
        break;                                                                                     \
    case 2:                                                                                        \
        for (ptrdiff_t i = 0; i < count; i++, at += step) {                                        \
            v8f x = LOAD(p + at); a += x; c += x * (LOAD(q + at) - sh);                            \
        }                                                                                          \
        break;                                                                                     \
    default:                                                                                       \
        for (ptrdiff_t i = 0; i < count; i++, at += step) {                                        \
            v8f x = ZERO_WHERE(LOAD(p + at), LOAD(mask + at) <= 0);                                \
            a += x; c += x * (LOAD(q + at) - sh);                                                  \
        }                                                                                          \
    }

// The same per image, `images` times `imageStride` floats apart, each image's Float sums added to
// `first` and `second` in Double lane by lane (as Swift's `a += SIMD8<Double>(va)`).
#define MMKD_REDUCE_IMAGES_BODY                                                                    \
    const v8f sh = LOAD(shift);                                                                    \
    double fa[8] = {0}, fb[8] = {0};                                                               \
    const float *p0 = p, *q0 = q, *m0 = mask;                                                      \
    for (ptrdiff_t image = 0; image < images; image++) {                                           \
        const float *p = p0 + image * imageStride, *q = q0 + image * imageStride;                  \
        const float *mask = m0 + image * imageStride;                                              \
        MMKD_REDUCE_LOOPS                                                                          \
        float ta[8], tc[8];                                                                        \
        STORE(a, ta); STORE(c, tc);                                                                \
        for (int l = 0; l < 8; l++) { fa[l] += (double)ta[l]; fb[l] += (double)tc[l]; }            \
    }                                                                                              \
    for (int l = 0; l < 8; l++) { first[l] = fa[l]; second[l] = fb[l]; }

#define MMKD_MAP_BODY                                                                              \
    const v8f va_ = LOAD(a), vk = LOAD(k), vc = LOAD(center), vb_ = LOAD(b);                       \
    ptrdiff_t at = 0;                                                                              \
    switch (variant) {                                                                             \
    case 0:                                                                                        \
        for (ptrdiff_t i = 0; i < count; i++, at += step) STORE(LOAD(p + at) * va_ + vb_, o + at); \
        break;                                                                                     \
    case 1:                                                                                        \
        for (ptrdiff_t i = 0; i < count; i++, at += step) {                                        \
            v8f r = LOAD(p + at) * va_ + vb_; STORE(ZERO_WHERE(r, r < 0), o + at);                 \
        }                                                                                          \
        break;                                                                                     \
    case 2:                                                                                        \
        for (ptrdiff_t i = 0; i < count; i++, at += step)                                          \
            STORE(LOAD(p + at) * va_ + (LOAD(q + at) - vc) * vk + vb_, o + at);                    \
        break;                                                                                     \
    case 4:                                                                                        \
        for (ptrdiff_t i = 0; i < count; i++, at += step) {                                        \
            v8f r = LOAD(p + at) * va_ + (LOAD(q + at) - vc) * vk + vb_;                           \
            STORE(ZERO_WHERE(r, LOAD(mask + at) <= 0), o + at);                                    \
        }                                                                                          \
        break;                                                                                     \
    default:                                                                                       \
        for (ptrdiff_t i = 0; i < count; i++, at += step) {                                        \
            v8f x = ZERO_WHERE(LOAD(p + at), LOAD(mask + at) <= 0);                                \
            STORE(x * va_ + (LOAD(q + at) - vc) * vk + vb_, o + at);                               \
        }                                                                                          \
    }

// Per image, the eight lane sums stored at `va + 8·image` and `vb + 8·image`.
#define MMKD_REDUCE_PER_IMAGE_BODY                                                                 \
    const v8f sh = LOAD(shift);                                                                    \
    const float *p0 = p, *q0 = q, *m0 = mask;                                                      \
    for (ptrdiff_t image = 0; image < images; image++) {                                           \
        const float *p = p0 + image * imageStride, *q = q0 + image * imageStride;                  \
        const float *mask = m0 + image * imageStride;                                              \
        MMKD_REDUCE_LOOPS                                                                          \
        STORE(a, va + 8 * image); STORE(c, vb + 8 * image);                                        \
    }

static void reduce_per_image_portable(int mode, const float *p, const float *q, const float *mask, const float *shift,
                                      ptrdiff_t images, ptrdiff_t imageStride, ptrdiff_t count, ptrdiff_t step, float *va, float *vb) {
    MMKD_REDUCE_PER_IMAGE_BODY
}

static void reduce_images_portable(int mode, const float *p, const float *q, const float *mask, const float *shift,
                                   ptrdiff_t images, ptrdiff_t imageStride, ptrdiff_t count, ptrdiff_t step, double *first, double *second) {
    MMKD_REDUCE_IMAGES_BODY
}

static void map_portable(int variant, const float *p, const float *q, const float *mask, const float *a, const float *k,
                         const float *center, const float *b, float *o, ptrdiff_t count, ptrdiff_t step) {
    MMKD_MAP_BODY
}

#ifdef MMKD_AVX2
MMKD_AVX2
static void reduce_per_image_avx2(int mode, const float *p, const float *q, const float *mask, const float *shift,
                                  ptrdiff_t images, ptrdiff_t imageStride, ptrdiff_t count, ptrdiff_t step, float *va, float *vb) {
    MMKD_REDUCE_PER_IMAGE_BODY
}

MMKD_AVX2
static void reduce_images_avx2(int mode, const float *p, const float *q, const float *mask, const float *shift,
                               ptrdiff_t images, ptrdiff_t imageStride, ptrdiff_t count, ptrdiff_t step, double *first, double *second) {
    MMKD_REDUCE_IMAGES_BODY
}

MMKD_AVX2
static void map_avx2(int variant, const float *p, const float *q, const float *mask, const float *a, const float *k,
                     const float *center, const float *b, float *o, ptrdiff_t count, ptrdiff_t step) {
    MMKD_MAP_BODY
}
#endif

void mmkd_reduce_vectors_per_image(int mode, const float *p, const float *q, const float *mask, const float *shift,
                                   ptrdiff_t images, ptrdiff_t imageStride, ptrdiff_t count, ptrdiff_t step, float *va, float *vb) {
    MMKD_DISPATCH(reduce_per_image_avx2, reduce_per_image_portable)(mode, p, q, mask, shift, images, imageStride, count, step, va, vb);
}

void mmkd_reduce_vectors_over_images(int mode, const float *p, const float *q, const float *mask, const float *shift,
                                     ptrdiff_t images, ptrdiff_t imageStride, ptrdiff_t count, ptrdiff_t step,
                                     double *first, double *second) {
    MMKD_DISPATCH(reduce_images_avx2, reduce_images_portable)(mode, p, q, mask, shift, images, imageStride, count, step, first, second);
}

void mmkd_map_vectors(int variant, const float *p, const float *q, const float *mask, const float *a, const float *k,
                      const float *center, const float *b, float *o, ptrdiff_t count, ptrdiff_t step) {
    MMKD_DISPATCH(map_avx2, map_portable)(variant, p, q, mask, a, k, center, b, o, count, step);
}
