// Winograd's tile transforms (WinogradKernels.swift, WinogradF4Kernels.swift state the maths), built
// for AVX2 and portably (see CKernels.h). Each lane is its own sequence of IEEE operations, in the
// order the Swift SIMD8 code these replace used: no contraction into fused multiply-adds, no
// reassociation, and negation as 0 − x (as Swift's SIMD negation), so every build gives the same bits.
#include "CKernels.h"
#include "eight_lanes.h"

#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

// MARK: - Per-tile transforms (d: the tile's positions, eight channels a lane; scratch after them)

// F(2×2, 3×3) input: Bᵀ·d·B for the 4×4 patch, Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
MMKD_INLINE void f2_input(v8f *d) {
    v8f *t = d + 16;
    for (int s = 0; s < 4; s++) {
        t[s] = d[s] - d[8 + s]; t[4 + s] = d[4 + s] + d[8 + s];
        t[8 + s] = d[8 + s] - d[4 + s]; t[12 + s] = d[4 + s] - d[12 + s];
    }
    for (int row = 0; row < 16; row += 4) {
        d[row] = t[row] - t[row + 2]; d[row + 1] = t[row + 1] + t[row + 2];
        d[row + 2] = t[row + 2] - t[row + 1]; d[row + 3] = t[row + 1] - t[row + 3];
    }
}

// F(2×2, 3×3) output: Aᵀ·m·A, Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]; the 2×2 outputs land in d[0…3].
MMKD_INLINE void f2_output(v8f *d) {
    v8f *t = d + 16;
    for (int s = 0; s < 4; s++) { t[s] = d[s] + d[4 + s] + d[8 + s]; t[4 + s] = d[4 + s] - d[8 + s] - d[12 + s]; }
    for (int r = 0; r < 2; r++) {
        d[2 * r] = t[4 * r] + t[4 * r + 1] + t[4 * r + 2];
        d[2 * r + 1] = t[4 * r + 1] - t[4 * r + 2] - t[4 * r + 3];
    }
}

// Bᵀ·(d0 … d5) for F(4×4, 3×3), read from `d` and written to `t` with `stride`.
MMKD_INLINE void f4_bt(const v8f *d, v8f *t, int stride) {
    const v8f d0 = d[0], d1 = d[stride], d2 = d[2 * stride], d3 = d[3 * stride], d4 = d[4 * stride], d5 = d[5 * stride];
    const v8f a = d4 - 4.0f * d2, b = d3 - 4.0f * d1, e = d4 - d2, f = 2.0f * (d3 - d1);
    t[0] = 4.0f * d0 - 5.0f * d2 + d4;
    t[stride] = a + b; t[2 * stride] = a - b;
    t[3 * stride] = e + f; t[4 * stride] = e - f;
    t[5 * stride] = 4.0f * d1 - 5.0f * d3 + d5;
}

// F(4×4, 3×3) input: Bᵀ·d·B for the 6×6 patch, column by column, then row by row.
MMKD_INLINE void f4_input(v8f *d) {
    v8f *t = d + 36;
    for (int s = 0; s < 6; s++) f4_bt(d + s, t + s, 6);
    for (int r = 0; r < 6; r++) f4_bt(t + r * 6, d + r * 6, 1);
}

// Aᵀ·(m0 … m5) for F(4×4, 3×3), Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0],
// [0, 1, −1, 8, −8, 1]], read with stride `ms`, written with stride `os`.
MMKD_INLINE void f4_at(const v8f *m, int ms, v8f *o, int os) {
    const v8f m0 = m[0], m1 = m[ms], m2 = m[2 * ms], m3 = m[3 * ms], m4 = m[4 * ms], m5 = m[5 * ms];
    const v8f s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
    o[0] = m0 + s12 + s34;
    o[os] = d12 + 2.0f * d34;
    o[2 * os] = s12 + 4.0f * s34;
    o[3 * os] = d12 + 8.0f * d34 + m5;
}

// F(4×4, 3×3) output: Aᵀ·m (four rows of six), then ·A row by row; the 4×4 outputs land in d[0…15].
MMKD_INLINE void f4_output(v8f *d) {
    v8f *t = d + 36;
    for (int q = 0; q < 6; q++) f4_at(d + q, 6, t + q, 6);
    for (int r = 0; r < 4; r++) f4_at(t + r * 6, 1, d + 4 * r, 1);
}

// MARK: - Jobs (one job: one image's block of eight channels)

// v[ξ][t][c] from NCHW8c x [n, c, h, w], tiles of side M: each plane is copied into a zero-bordered
// one (one pixel before, up to M after), so every tile reads a whole patch.
#define MMKD_INPUT_TILES_BODY(M, TRANSFORM)                                                       \
    const ptrdiff_t side = (M) + 2, positions = side * side;                                       \
    const ptrdiff_t tr = (h + (M) - 1) / (M), tc = (w + (M) - 1) / (M);                            \
    const ptrdiff_t blocks = c / 8, plane = n * tr * tc * c;                                       \
    const ptrdiff_t pw = (M) * tc + 2, ph = (M) * tr + 2;                                          \
    float *padded = calloc((size_t)(ph * pw * 8), sizeof(float));                                  \
    if (padded == NULL) abort();                                                                   \
    v8f d[2 * 36];                                                                                 \
    for (ptrdiff_t job = firstJob; job < endJob; job++) {                                          \
        const ptrdiff_t image = job / blocks, cb = job % blocks;                                   \
        const float *source = x + (image * blocks + cb) * h * w * 8;                               \
        for (ptrdiff_t y = 0; y < h; y++)                                                          \
            memcpy(padded + ((y + 1) * pw + 1) * 8, source + y * w * 8, (size_t)(w * 8) * sizeof(float)); \
        for (ptrdiff_t ty = 0; ty < tr; ty++) {                                                    \
            for (ptrdiff_t tx = 0; tx < tc; tx++) {                                                \
                const float *row = padded + ((M) * ty * pw + (M) * tx) * 8;                        \
                for (ptrdiff_t r = 0; r < side; r++) {                                             \
                    for (ptrdiff_t s = 0; s < side; s++) d[r * side + s] = LOAD(row + s * 8);      \
                    row += pw * 8;                                                                 \
                }                                                                                  \
                TRANSFORM(d);                                                                      \
                float *out = v + ((image * tr + ty) * tc + tx) * c + cb * 8;                       \
                for (ptrdiff_t xi = 0; xi < positions; xi++) STORE(d[xi], out + xi * plane);       \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    free(padded);

// NCHW8c y [n, k, h, w] from m[ξ][t][k], tiles of side M, plus bias, clamped at 0 when relu;
// outputs outside the map dropped.
#define MMKD_OUTPUT_TILES_BODY(M, TRANSFORM)                                                      \
    const ptrdiff_t positions = ((M) + 2) * ((M) + 2);                                             \
    const ptrdiff_t tr = (h + (M) - 1) / (M), tc = (w + (M) - 1) / (M);                            \
    const ptrdiff_t blocks = k / 8, plane = n * tr * tc * k;                                       \
    const v8f zero = {0};                                                                          \
    v8f d[2 * 36];                                                                                 \
    for (ptrdiff_t job = firstJob; job < endJob; job++) {                                          \
        const ptrdiff_t image = job / blocks, kb = job % blocks;                                   \
        float *target = y + (image * blocks + kb) * h * w * 8;                                     \
        const v8f b = bias != NULL ? LOAD(bias + kb * 8) : zero;                                   \
        for (ptrdiff_t ty = 0; ty < tr; ty++) {                                                    \
            for (ptrdiff_t tx = 0; tx < tc; tx++) {                                                \
                const float *src = products + ((image * tr + ty) * tc + tx) * k + kb * 8;          \
                for (ptrdiff_t xi = 0; xi < positions; xi++) d[xi] = LOAD(src + xi * plane);       \
                TRANSFORM(d);                                                                      \
                for (ptrdiff_t r = 0; r < (M) && (M) * ty + r < h; r++) {                          \
                    for (ptrdiff_t s = 0; s < (M) && (M) * tx + s < w; s++) {                      \
                        v8f value = d[r * (M) + s] + b;                                            \
                        if (relu) value = ZERO_WHERE(value, value < 0);                            \
                        STORE(value, target + (((M) * ty + r) * w + (M) * tx + s) * 8);            \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

// m̄[ξ][t][k] = (A·ḡ·Aᵀ)[ξ] for every 2×2 output-gradient tile ḡ of NCHW8c gy [n, k, h, w] (zero
// outside the map): the adjoint of the F(2×2, 3×3) output transform.
#define MMKD_OUTPUT_GRADIENT_BODY                                                                  \
    const ptrdiff_t tr = (h + 1) / 2, tc = (w + 1) / 2;                                            \
    const ptrdiff_t blocks = k / 8, plane16 = n * tr * tc * k;                                     \
    const v8f zero = {0};                                                                          \
    for (ptrdiff_t job = firstJob; job < endJob; job++) {                                          \
        const ptrdiff_t image = job / blocks, kb = job % blocks;                                   \
        const float *plane = gy + (image * blocks + kb) * h * w * 8;                               \
        for (ptrdiff_t ty = 0; ty < tr; ty++) {                                                    \
            for (ptrdiff_t tx = 0; tx < tc; tx++) {                                                \
                const ptrdiff_t y0 = 2 * ty, x0 = 2 * tx;                                          \
                const v8f g00 = y0 < h && x0 < w ? LOAD(plane + (y0 * w + x0) * 8) : zero;         \
                const v8f g01 = y0 < h && x0 + 1 < w ? LOAD(plane + (y0 * w + x0 + 1) * 8) : zero; \
                const v8f g10 = y0 + 1 < h && x0 < w ? LOAD(plane + ((y0 + 1) * w + x0) * 8) : zero; \
                const v8f g11 = y0 + 1 < h && x0 + 1 < w ? LOAD(plane + ((y0 + 1) * w + x0 + 1) * 8) : zero; \
                /* A·ḡ (4×2): rows [g0, g0 + g1, g0 − g1, −g1] of the two columns; then ·Aᵀ. */    \
                const v8f p[4] = {g00, g00 + g10, g00 - g10, zero - g10};                          \
                const v8f q[4] = {g01, g01 + g11, g01 - g11, zero - g11};                          \
                float *out = mbar + ((image * tr + ty) * tc + tx) * k + kb * 8;                    \
                for (int r = 0; r < 4; r++) {                                                      \
                    float *o = out + 4 * r * plane16;                                              \
                    STORE(p[r], o); STORE(p[r] + q[r], o + plane16);                               \
                    STORE(p[r] - q[r], o + 2 * plane16); STORE(zero - q[r], o + 3 * plane16);      \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

#define MMKD_INPUT_TILES_PARAMETERS                                                                \
    const float *x, ptrdiff_t n, ptrdiff_t c, ptrdiff_t h, ptrdiff_t w, float *v, ptrdiff_t firstJob, ptrdiff_t endJob
#define MMKD_OUTPUT_TILES_PARAMETERS                                                               \
    const float *products, ptrdiff_t n, ptrdiff_t k, ptrdiff_t h, ptrdiff_t w, const float *bias, int relu, float *y, \
        ptrdiff_t firstJob, ptrdiff_t endJob
#define MMKD_OUTPUT_GRADIENT_PARAMETERS                                                            \
    const float *gy, ptrdiff_t n, ptrdiff_t k, ptrdiff_t h, ptrdiff_t w, float *mbar, ptrdiff_t firstJob, ptrdiff_t endJob

static void input_f2_portable(MMKD_INPUT_TILES_PARAMETERS) { MMKD_INPUT_TILES_BODY(2, f2_input) }
static void input_f4_portable(MMKD_INPUT_TILES_PARAMETERS) { MMKD_INPUT_TILES_BODY(4, f4_input) }
static void output_f2_portable(MMKD_OUTPUT_TILES_PARAMETERS) { MMKD_OUTPUT_TILES_BODY(2, f2_output) }
static void output_f4_portable(MMKD_OUTPUT_TILES_PARAMETERS) { MMKD_OUTPUT_TILES_BODY(4, f4_output) }
static void output_gradient_portable(MMKD_OUTPUT_GRADIENT_PARAMETERS) { MMKD_OUTPUT_GRADIENT_BODY }

#ifdef MMKD_AVX2
MMKD_AVX2 static void input_f2_avx2(MMKD_INPUT_TILES_PARAMETERS) { MMKD_INPUT_TILES_BODY(2, f2_input) }
MMKD_AVX2 static void input_f4_avx2(MMKD_INPUT_TILES_PARAMETERS) { MMKD_INPUT_TILES_BODY(4, f4_input) }
MMKD_AVX2 static void output_f2_avx2(MMKD_OUTPUT_TILES_PARAMETERS) { MMKD_OUTPUT_TILES_BODY(2, f2_output) }
MMKD_AVX2 static void output_f4_avx2(MMKD_OUTPUT_TILES_PARAMETERS) { MMKD_OUTPUT_TILES_BODY(4, f4_output) }
MMKD_AVX2 static void output_gradient_avx2(MMKD_OUTPUT_GRADIENT_PARAMETERS) { MMKD_OUTPUT_GRADIENT_BODY }
#endif

void mmkd_winograd_input_tiles(int outputTile, const float *x, ptrdiff_t n, ptrdiff_t c, ptrdiff_t h, ptrdiff_t w, float *v,
                               ptrdiff_t firstJob, ptrdiff_t endJob) {
    if (outputTile == 2) MMKD_DISPATCH(input_f2_avx2, input_f2_portable)(x, n, c, h, w, v, firstJob, endJob);
    else MMKD_DISPATCH(input_f4_avx2, input_f4_portable)(x, n, c, h, w, v, firstJob, endJob);
}

void mmkd_winograd_output_tiles(int outputTile, const float *products, ptrdiff_t n, ptrdiff_t k, ptrdiff_t h, ptrdiff_t w,
                                const float *bias, int relu, float *y, ptrdiff_t firstJob, ptrdiff_t endJob) {
    if (outputTile == 2) MMKD_DISPATCH(output_f2_avx2, output_f2_portable)(products, n, k, h, w, bias, relu, y, firstJob, endJob);
    else MMKD_DISPATCH(output_f4_avx2, output_f4_portable)(products, n, k, h, w, bias, relu, y, firstJob, endJob);
}

void mmkd_winograd_output_gradient(const float *gy, ptrdiff_t n, ptrdiff_t k, ptrdiff_t h, ptrdiff_t w, float *mbar,
                                   ptrdiff_t firstJob, ptrdiff_t endJob) {
    MMKD_DISPATCH(output_gradient_avx2, output_gradient_portable)(gy, n, k, h, w, mbar, firstJob, endJob);
}
