import CKernels
import Foundation

/// Winograd F(2×2, 3×3) convolution kernels (Lavin & Gray, 2016) for 3×3, stride-1, padding-1
/// convolutions over activations in oneDNN's NCHW8c layout: each 2×2 output tile is
/// `Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A` for the 4×4 input patch `d` and the 3×3 filter `g`, the element-wise
/// products summed over input channels as 16 matrix products (one per position ξ of the 4×4
/// transformed tile). 16 multiplications per tile and channel pair instead of 36.
///
/// Buffers: `u[ξ][c][k]` (transformed filters), `v[ξ][t][c]` (transformed input tiles),
/// `m[ξ][t][k]` (their products), with tiles `t` numbered image by image, row by row.
package enum WinogradKernels: EightLaneMemory {
    /// The most bytes of transformed tiles (input and output side together) one block of images
    /// holds; convolutions over larger batches run block by block. 8 MB by default (measured with
    /// `mmkd bench kernels --filter winograd` at 1, 4, 8, 16, 32 MB and unblocked: within noise of
    /// each other except at 64 channels on 32×32 maps, where blocks of 8–16 MB run 1.3–1.5× faster
    /// than whole-batch buffers); `MMKD_WINOGRAD_BLOCK_KB` overrides it.
    nonisolated(unsafe) package static var blockBytes = Int(ProcessInfo.processInfo.environment["MMKD_WINOGRAD_BLOCK_KB"] ?? "").map { $0 << 10 } ?? (8 << 20)

    /// Output tiles of side `outputTile` covering an `h × w` map, per image.
    @inline(__always) static func tiles(_ h: Int, _ w: Int, outputTile m: Int = 2) -> (rows: Int, columns: Int) {
        ((h + m - 1) / m, (w + m - 1) / m)
    }

    /// `u[ξ][c][k] = (G·g[k][c]·Gᵀ)[ξ]` for plain weights `[k, c, 3, 3]`, with
    /// G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]. When `flipped`, the filters of the
    /// transposed convolution instead (backward data): `u[ξ][k][c] = (G·rot180(g[k][c])·Gᵀ)[ξ]`.
    package static func transformFilters(_ g: UnsafePointer<Float>, outChannels k: Int, inChannels c: Int, flipped: Bool = false,
                                        _ u: UnsafeMutablePointer<Float>) {
        forEachFilterOctet(g, outChannels: k, inChannels: c, flipped: flipped, u) { f, out, plane in
            // G·f (4×3), row by row: t[r][col]; then ·Gᵀ along each row: u[4r + j].
            var out = out
            @inline(__always) func emit(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ d: SIMD8<Float>) {
                store(a, out); store(0.5 * (a + b + d), out + plane); store(0.5 * (a - b + d), out + 2 * plane); store(d, out + 3 * plane)
                out += 4 * plane
            }
            emit(f[0], f[1], f[2])
            emit(0.5 * (f[0] + f[3] + f[6]), 0.5 * (f[1] + f[4] + f[7]), 0.5 * (f[2] + f[5] + f[8]))
            emit(0.5 * (f[0] - f[3] + f[6]), 0.5 * (f[1] - f[4] + f[7]), 0.5 * (f[2] - f[5] + f[8]))
            emit(f[6], f[7], f[8])
        }
    }

    /// Runs `body(f, out, plane)` for every eight consecutive filters of a transformed-filter buffer
    /// `u` `[positions][rows][columns]` (rows: the input channels of the convolution it computes,
    /// `k` when `flipped`, else `c`; channel counts are multiples of 8). `f[j]` holds tap `j` of the
    /// 3×3 filters (row-major; rotated 180° when `flipped`) in eight lanes, one per column; `body`
    /// writes position ξ's eight values at `out + ξ·plane`.
    static func forEachFilterOctet(_ weights: UnsafePointer<Float>, outChannels k: Int, inChannels c: Int, flipped: Bool,
                                   _ u: UnsafeMutablePointer<Float>,
                                   _ body: (UnsafePointer<SIMD8<Float>>, UnsafeMutablePointer<Float>, Int) -> Void) {
        let (rows, columns) = flipped ? (k, c) : (c, k)
        let ws = SendablePointer(UnsafeMutablePointer(mutating: weights)), us = SendablePointer(u)
        let laneStride = flipped ? 9 : c * 9
        Parallel.chunks(rows, grain: max(1, 4096 / max(columns, 1))) { range in
            let f = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: 9)
            defer { f.deallocate() }
            for row in range {
                for column in stride(from: 0, to: columns, by: 8) {
                    let src = ws.pointer + (flipped ? row * c + column : column * c + row) * 9
                    for j in 0..<9 {
                        let e = flipped ? 8 - j : j
                        var v = SIMD8<Float>()
                        for l in 0..<8 { v[l] = src[l * laneStride + e] }
                        f[j] = v
                    }
                    body(f, us.pointer + row * columns + column, rows * columns)
                }
            }
        }
    }

    /// The weight gradient `gw[k][c] = Gᵀ·ū[·][k][c]·G` (3×3, plain `[k, c, 3, 3]`) from the
    /// gradient `ū` `[16][k][c]` of the transformed filters: the adjoint of `transformFilters`.
    package static func transformFilterGradient(_ ubar: UnsafePointer<Float>, outChannels k: Int, inChannels c: Int,
                                               _ gw: UnsafeMutablePointer<Float>) {
        let us = SendablePointer(UnsafeMutablePointer(mutating: ubar)), gs = SendablePointer(gw)
        let plane = k * c
        Parallel.chunks(k, grain: max(1, 4096 / max(c, 1))) { range in
            for o in range {
                for i in 0..<c {
                    // Rows of ū (each a SIMD4 over its 4 columns), then Gᵀ·ū (3×4), then ·G.
                    let src = us.pointer + o * c + i
                    @inline(__always) func row(_ r: Int) -> SIMD4<Float> {
                        let p = src + 4 * r * plane
                        return SIMD4(p[0], p[plane], p[2 * plane], p[3 * plane])
                    }
                    let m0 = row(0), m1 = row(1), m2 = row(2), m3 = row(3)
                    let a0 = m0 + 0.5 * (m1 + m2), a1 = 0.5 * (m1 - m2), a2 = 0.5 * (m1 + m2) + m3
                    let out = gs.pointer + (o * c + i) * 9
                    @inline(__always) func write(_ a: SIMD4<Float>, _ r: Int) {
                        out[r * 3] = a[0] + 0.5 * (a[1] + a[2])
                        out[r * 3 + 1] = 0.5 * (a[1] - a[2])
                        out[r * 3 + 2] = 0.5 * (a[1] + a[2]) + a[3]
                    }
                    write(a0, 0); write(a1, 1); write(a2, 2)
                }
            }
        }
    }

    /// `v[ξ][t][c] = (Bᵀ·d·B)[ξ]` for every tile's 4×4 input patch `d` (zero outside the map), with
    /// Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]. `x` is NCHW8c `[n, c, h, w]`.
    package static func transformInput(_ x: UnsafePointer<Float>, n: Int, c: Int, h: Int, w: Int, _ v: UnsafeMutablePointer<Float>) {
        inputTiles(x, n: n, c: c, h: h, w: w, outputTile: 2, v)
    }

    /// Fills `v[ξ][t][c]` from NCHW8c `x` `[n, c, h, w]` for output tiles of side `outputTile` (2 or
    /// 4): the C kernel `mmkd_winograd_input_tiles`, one image's channel block a job.
    static func inputTiles(_ x: UnsafePointer<Float>, n: Int, c: Int, h: Int, w: Int, outputTile: Int, _ v: UnsafeMutablePointer<Float>) {
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), vs = SendablePointer(v)
        Parallel.chunks(n * (c / 8), grain: 1) { jobs in
            mmkd_winograd_input_tiles(Int32(outputTile), xs.pointer, n, c, h, w, vs.pointer, jobs.lowerBound, jobs.upperBound)
        }
    }

    /// `m̄[ξ][t][k] = (A·ḡ·Aᵀ)[ξ]` for every tile's 2×2 output gradient `ḡ` (zero outside the map)
    /// of NCHW8c `gy` `[n, k, h, w]`: the adjoint of `transformOutput`.
    package static func transformOutputGradient(_ gy: UnsafePointer<Float>, n: Int, k: Int, h: Int, w: Int, _ mbar: UnsafeMutablePointer<Float>) {
        let gs = SendablePointer(UnsafeMutablePointer(mutating: gy)), ms = SendablePointer(mbar)
        Parallel.chunks(n * (k / 8), grain: 1) { jobs in
            mmkd_winograd_output_gradient(gs.pointer, n, k, h, w, ms.pointer, jobs.lowerBound, jobs.upperBound)
        }
    }

    /// The `positions` (16 here, 36 for F(4×4, 3×3)) products `c[ξ] = op(a[ξ])·op(b[ξ])`
    /// (`c[ξ] += …` when `accumulate`) of `[m, k]·[k, n]` matrices stored one after another (`op`
    /// transposes when asked: `a[ξ]` is then stored `[k, m]`), split across the workers.
    package static func multiply(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                                m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false, accumulate: Bool = false,
                                positions: Int = 16) {
        let asp = SendablePointer(UnsafeMutablePointer(mutating: a)), bsp = SendablePointer(UnsafeMutablePointer(mutating: b))
        let csp = SendablePointer(c)
        Parallel.chunks(positions, grain: 1) { range in
            for xi in range {
                GEMM.multiply(asp.pointer + xi * m * k, bsp.pointer + xi * k * n, csp.pointer + xi * m * n,
                              m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, accumulate: accumulate)
            }
        }
    }

    /// The output tiles `Aᵀ·m·A` (Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]) plus `bias`, clamped at 0
    /// when `relu`, written to `y` in NCHW8c `[n, k, h, w]`.
    package static func transformOutput(_ m: UnsafePointer<Float>, n: Int, k: Int, h: Int, w: Int, bias: UnsafePointer<Float>?, relu: Bool,
                                       _ y: UnsafeMutablePointer<Float>) {
        outputTiles(m, n: n, k: k, h: h, w: w, outputTile: 2, bias: bias, relu: relu, y)
    }

    /// Writes NCHW8c `y` `[n, k, h, w]` from `m[ξ][t][k]` for output tiles of side `outputTile` (2 or
    /// 4), `bias` added, a ReLU applied when `relu`, outputs outside the map dropped: the C kernel
    /// `mmkd_winograd_output_tiles`, one image's channel block a job.
    static func outputTiles(_ m: UnsafePointer<Float>, n: Int, k: Int, h: Int, w: Int, outputTile: Int,
                            bias: UnsafePointer<Float>?, relu: Bool, _ y: UnsafeMutablePointer<Float>) {
        let ms = SendablePointer(UnsafeMutablePointer(mutating: m)), ys = SendablePointer(y)
        let bs = bias.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        Parallel.chunks(n * (k / 8), grain: 1) { jobs in
            mmkd_winograd_output_tiles(Int32(outputTile), ms.pointer, n, k, h, w, bs?.pointer, relu ? 1 : 0, ys.pointer,
                                       jobs.lowerBound, jobs.upperBound)
        }
    }
}
