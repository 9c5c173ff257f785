/// Winograd F(2×2, 3×3) convolution kernels (Lavin & Gray, 2016) for 3×3, stride-1, padding-1
/// convolutions over activations in oneDNN's NCHW8c layout: each 2×2 output tile is
/// `Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A` for the 4×4 input patch `d` and the 3×3 filter `g`, the element-wise
/// products summed over input channels as 16 matrix products (one per position ξ of the 4×4
/// transformed tile). 16 multiplications per tile and channel pair instead of 36.
///
/// Buffers: `u[ξ][c][k]` (transformed filters), `v[ξ][t][c]` (transformed input tiles),
/// `m[ξ][t][k]` (their products), with tiles `t` numbered image by image, row by row.
public enum WinogradKernels: EightLaneMemory {
    /// Output tiles of an `h × w` map: ⌈h/2⌉·⌈w/2⌉ per image.
    @inline(__always) static func tiles(_ h: Int, _ w: Int) -> (rows: Int, columns: Int) { ((h + 1) / 2, (w + 1) / 2) }

    /// `u[ξ][c][k] = (G·g[k][c]·Gᵀ)[ξ]` for plain weights `[k, c, 3, 3]`, with
    /// G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]].
    public static func transformFilters(_ g: UnsafePointer<Float>, outChannels k: Int, inChannels c: Int, _ u: UnsafeMutablePointer<Float>) {
        let gs = SendablePointer(UnsafeMutablePointer(mutating: g)), us = SendablePointer(u)
        Parallel.chunks(k, grain: max(1, 4096 / max(c, 1))) { range in
            for o in range {
                for i in 0..<c {
                    let f = gs.pointer + (o * c + i) * 9
                    // G·f (4×3), one column at a time, then ·Gᵀ along each row.
                    var t = (SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>())
                    for col in 0..<3 {
                        let a = f[col], b = f[3 + col], d = f[6 + col]
                        let v = SIMD4<Float>(a, 0.5 * (a + b + d), 0.5 * (a - b + d), d)
                        if col == 0 { t.0 = v } else if col == 1 { t.1 = v } else { t.2 = v }
                    }
                    let r0 = t.0, r1 = (t.0 + t.1 + t.2) * 0.5, r2 = (t.0 - t.1 + t.2) * 0.5, r3 = t.2
                    for r in 0..<4 {
                        let base = us.pointer + (r * 4 * c + i) * k + o
                        base[0] = r0[r]; base[c * k] = r1[r]; base[2 * c * k] = r2[r]; base[3 * c * k] = r3[r]
                    }
                }
            }
        }
    }


    /// `v[ξ][t][c] = (Bᵀ·d·B)[ξ]` for every tile's 4×4 input patch `d` (zero outside the map), with
    /// Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]. `x` is NCHW8c `[n, c, h, w]`.
    public static func transformInput(_ x: UnsafePointer<Float>, n: Int, c: Int, h: Int, w: Int, _ v: UnsafeMutablePointer<Float>) {
        let (tr, tc) = tiles(h, w)
        let tileCount = n * tr * tc, blocks = c / 8
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), vs = SendablePointer(v)
        Parallel.chunks(n * blocks, grain: 1) { range in
            for job in range {
                let image = job / blocks, cb = job % blocks
                let plane = xs.pointer + (image * blocks + cb) * h * w * 8
                let d = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: 32), t = d + 16
                defer { d.deallocate() }
                for ty in 0..<tr {
                    for tx in 0..<tc {
                        let y0 = 2 * ty - 1, x0 = 2 * tx - 1
                        if y0 >= 0 && y0 + 3 < h && x0 >= 0 && x0 + 3 < w {
                            // Interior tile: no padding.
                            var row = plane + (y0 * w + x0) * 8
                            for r in 0..<4 {
                                d[r * 4] = load(row); d[r * 4 + 1] = load(row + 8); d[r * 4 + 2] = load(row + 16); d[r * 4 + 3] = load(row + 24)
                                row += w * 8
                            }
                        } else {
                            for i in 0..<16 { d[i] = SIMD8() }
                            for r in 0..<4 where y0 + r >= 0 && y0 + r < h {
                                for s in 0..<4 where x0 + s >= 0 && x0 + s < w { d[r * 4 + s] = load(plane + ((y0 + r) * w + x0 + s) * 8) }
                            }
                        }
                        // Bᵀ·d (rows), then ·B (columns).
                        for s in 0..<4 {
                            t[s] = d[s] - d[8 + s]; t[4 + s] = d[4 + s] + d[8 + s]
                            t[8 + s] = d[8 + s] - d[4 + s]; t[12 + s] = d[4 + s] - d[12 + s]
                        }
                        let tile = (image * tr + ty) * tc + tx
                        let out = vs.pointer + tile * c + cb * 8
                        let plane16 = tileCount * c
                        for r in 0..<4 {
                            let row = r * 4
                            store(t[row] - t[row + 2], out + (row) * plane16)
                            store(t[row + 1] + t[row + 2], out + (row + 1) * plane16)
                            store(t[row + 2] - t[row + 1], out + (row + 2) * plane16)
                            store(t[row + 1] - t[row + 3], out + (row + 3) * plane16)
                        }
                    }
                }
            }
        }
    }

    /// `m[ξ] = v[ξ]·u[ξ]` for the 16 positions: `[tiles, c]·[c, k]`, split across the workers.
    public static func multiply(_ v: UnsafePointer<Float>, _ u: UnsafePointer<Float>, tiles: Int, c: Int, k: Int, _ m: UnsafeMutablePointer<Float>) {
        let vs = SendablePointer(UnsafeMutablePointer(mutating: v)), us = SendablePointer(UnsafeMutablePointer(mutating: u)), ms = SendablePointer(m)
        Parallel.chunks(16, grain: 1) { range in
            for xi in range {
                GEMM.multiply(vs.pointer + xi * tiles * c, us.pointer + xi * c * k, ms.pointer + xi * tiles * k,
                              m: tiles, n: k, k: c, transposeA: false, transposeB: false)
            }
        }
    }

    /// The output tiles `Aᵀ·m·A` (Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]) plus `bias`, clamped at 0
    /// when `relu`, written to `y` in NCHW8c `[n, k, h, w]`.
    public static func transformOutput(_ m: UnsafePointer<Float>, n: Int, k: Int, h: Int, w: Int, bias: UnsafePointer<Float>?, relu: Bool,
                                       _ y: UnsafeMutablePointer<Float>) {
        let (tr, tc) = tiles(h, w)
        let tileCount = n * tr * tc, blocks = k / 8
        let ms = SendablePointer(UnsafeMutablePointer(mutating: m)), ys = SendablePointer(y)
        let bs = bias.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        Parallel.chunks(n * blocks, grain: 1) { range in
            for job in range {
                let image = job / blocks, kb = job % blocks
                let plane = ys.pointer + (image * blocks + kb) * h * w * 8
                let b = bs.map { load($0.pointer + kb * 8) } ?? SIMD8()
                let plane16 = tileCount * k
                let t = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: 8)
                defer { t.deallocate() }
                for ty in 0..<tr {
                    for tx in 0..<tc {
                        let tile = (image * tr + ty) * tc + tx
                        let src = ms.pointer + tile * k + kb * 8
                        // Aᵀ·m: two rows of four.
                        for s in 0..<4 {
                            let m0 = load(src + s * plane16), m1 = load(src + (4 + s) * plane16)
                            let m2 = load(src + (8 + s) * plane16), m3 = load(src + (12 + s) * plane16)
                            t[s] = m0 + m1 + m2; t[4 + s] = m1 - m2 - m3
                        }
                        for r in 0..<2 {
                            let y0 = 2 * ty + r
                            guard y0 < h else { continue }
                            var o0 = t[r * 4] + t[r * 4 + 1] + t[r * 4 + 2] + b
                            var o1 = t[r * 4 + 1] - t[r * 4 + 2] - t[r * 4 + 3] + b
                            if relu { o0 = o0.replacing(with: 0, where: o0 .< 0); o1 = o1.replacing(with: 0, where: o1 .< 0) }
                            store(o0, plane + (y0 * w + 2 * tx) * 8)
                            if 2 * tx + 1 < w { store(o1, plane + (y0 * w + 2 * tx + 1) * 8) }
                        }
                    }
                }
            }
        }
    }
}
