#ifndef MMKD_CKERNELS_H
#define MMKD_CKERNELS_H

#include <stddef.h>
// glibc's backtrace and backtrace_symbols, for the engine's MemoryProfile (Swift's Glibc module
// leaves execinfo.h out).
#include <execinfo.h>

/// Element-wise operations of `mmkd_binary_row` (the codes `ElementwiseKernels.Binary` passes).
enum {
    MMKD_BINARY_ADD = 0,
    MMKD_BINARY_SUB = 1,
    MMKD_BINARY_MUL = 2,
    MMKD_BINARY_DIV = 3,
    MMKD_BINARY_MASK_POSITIVE = 4,
};

/// One row of a broadcasting binary operation: `out[i] = a[i·ia] op b[i·ib]` for `n` values, with
/// `ia` and `ib` each 0 (a broadcast scalar) or 1 (contiguous). The plain IEEE operation, one rounding
/// per value (no contraction, no reassociation), so every path gives the same bits. Runs an AVX2
/// build of the loops when the CPU has AVX2 and FMA and `MMKD_PORTABLE_KERNELS` is unset, else a
/// portable one. Returns 0, touching nothing, for a case it does not handle (another stride, or
/// mask-positive with a broadcast operand); the caller then runs its own loop.
int mmkd_binary_row(int op, const float *a, ptrdiff_t ia, const float *b, ptrdiff_t ib, float *out, ptrdiff_t n);

/// Channel reductions of batch norm over `count` vectors of eight lanes, `step` floats apart, each
/// lane summed on its own in Float, in order, for each of `images` images `imageStride` floats apart:
/// mode 0: va += p;  1: d = p − shift, va += d, vb += d·d;  2: va += p, vb += p·(q − shift);
/// 3: as 2 with p zeroed where mask ≤ 0. Image i's eight lane sums go to `va + 8i` and `vb + 8i`.
void mmkd_reduce_vectors_per_image(int mode, const float *p, const float *q, const float *mask, const float *shift,
                                   ptrdiff_t images, ptrdiff_t imageStride, ptrdiff_t count, ptrdiff_t step, float *va, float *vb);

/// The same, with each image's eight lane sums added in Double to `first` and `second` (eight each, overwritten), image by image.
void mmkd_reduce_vectors_over_images(int mode, const float *p, const float *q, const float *mask, const float *shift,
                                     ptrdiff_t images, ptrdiff_t imageStride, ptrdiff_t count, ptrdiff_t step,
                                     double *first, double *second);

/// Channel maps of batch norm over `count` vectors of eight lanes, `step` floats apart (as
/// `NormalizationKernels.mapVectors`), with per-lane coefficients a, k, center, b (eight each):
/// variant 0: o = p·a + b;  1: the same clamped at 0;  2: o = p·a + (q − center)·k + b;
/// 3: as 2 with p zeroed where mask ≤ 0;  4: as 2 with o zeroed where mask ≤ 0.
void mmkd_map_vectors(int variant, const float *p, const float *q, const float *mask, const float *a, const float *k,
                      const float *center, const float *b, float *o, ptrdiff_t count, ptrdiff_t step);

/// Winograd tile transforms for jobs `firstJob ..< endJob` (job j: image j / (channels / 8), channel
/// block j % (channels / 8)) over NCHW8c maps `[n, channels, h, w]` with tiles of side `outputTile`
/// (2: F(2×2, 3×3), 4: F(4×4, 3×3)); buffers and formulas as in `WinogradKernels`:
/// input patches to `v[ξ][t][c]`; products `m[ξ][t][k]` to outputs `y` (+ bias when not NULL,
/// clamped at 0 when `relu`); output gradients to `m̄[ξ][t][k]` (F(2×2, 3×3) only).
void mmkd_winograd_input_tiles(int outputTile, const float *x, ptrdiff_t n, ptrdiff_t c, ptrdiff_t h, ptrdiff_t w, float *v,
                               ptrdiff_t firstJob, ptrdiff_t endJob);
void mmkd_winograd_output_tiles(int outputTile, const float *products, ptrdiff_t n, ptrdiff_t k, ptrdiff_t h, ptrdiff_t w,
                                const float *bias, int relu, float *y, ptrdiff_t firstJob, ptrdiff_t endJob);
void mmkd_winograd_output_gradient(const float *gy, ptrdiff_t n, ptrdiff_t k, ptrdiff_t h, ptrdiff_t w, float *mbar,
                                   ptrdiff_t firstJob, ptrdiff_t endJob);

/// 1 when the AVX2 builds of the kernels run, 0 when the portable ones do.
int mmkd_kernels_use_avx2(void);

/// The widest x86 vector extension this CPU has, by feature (CPUID), not by model number:
/// 3 AVX-512 (F, BW, DQ, VL), 2 AVX2 with FMA, 1 AVX, 0 none of them (or another architecture).
int mmkd_cpu_vector_level(void);

#endif
