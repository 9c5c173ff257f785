/// Winograd F(4×4, 3×3) kernels (Lavin & Gray, 2016; interpolation points 0, ±1, ±2) for 3×3,
/// stride-1, padding-1 convolutions over NCHW8c activations: each 4×4 output tile is
/// `Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A` for the 6×6 input patch `d`, the products summed over input
/// channels as 36 matrix products. 36 multiplications per tile and channel pair instead of 144
/// (F(2×2, 3×3): 64), at the price of larger transform constants and so a few more ulps of
/// rounding: used for inference (frozen teachers), see `WinogradPolicy`.
///
/// Buffers as in `WinogradKernels`, with 36 positions ξ: `u[ξ][c][k]`, `v[ξ][t][c]`, `m[ξ][t][k]`.
public enum WinogradF4Kernels: EightLaneMemory {
    /// Output tiles of an `h × w` map: ⌈h/4⌉·⌈w/4⌉ per image.
    @inline(__always) static func tiles(_ h: Int, _ w: Int) -> (rows: Int, columns: Int) { ((h + 3) / 4, (w + 3) / 4) }

    /// G·(a, b, c) for G = [[¼, 0, 0], [−⅙, −⅙, −⅙], [−⅙, ⅙, −⅙], [1/24, 1/12, ⅙], [1/24, −1/12, ⅙], [0, 0, 1]].
    @inline(__always)
    static func g(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>)
        -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let ac = a + c, q = a * (1 / 24) + c * (1 / 6), r = b * (1 / 12)
        return (a * 0.25, (ac + b) * (-1 / 6), (ac - b) * (-1 / 6), q + r, q - r, c)
    }

    /// `u[ξ][c][k] = (G·g[k][c]·Gᵀ)[ξ]` for plain weights `[k, c, 3, 3]` (`flipped`: the transposed
    /// convolution's `u[ξ][k][c] = (G·rot180(g[k][c])·Gᵀ)[ξ]`), eight filter columns at a time.
    public static func transformFilters(_ weights: UnsafePointer<Float>, outChannels k: Int, inChannels c: Int, flipped: Bool = false,
                                        _ u: UnsafeMutablePointer<Float>) {
        WinogradKernels.forEachFilterOctet(weights, outChannels: k, inChannels: c, flipped: flipped, u) { f, out, plane in
            // G·f column by column (t[p][b]), then ·Gᵀ along each row p: u[6p + q].
            let c0 = g(f[0], f[3], f[6]), c1 = g(f[1], f[4], f[7]), c2 = g(f[2], f[5], f[8])
            var out = out
            @inline(__always) func emit(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ d: SIMD8<Float>) {
                let r = g(a, b, d)
                store(r.0, out); store(r.1, out + plane); store(r.2, out + 2 * plane)
                store(r.3, out + 3 * plane); store(r.4, out + 4 * plane); store(r.5, out + 5 * plane)
                out += 6 * plane
            }
            emit(c0.0, c1.0, c2.0); emit(c0.1, c1.1, c2.1); emit(c0.2, c1.2, c2.2)
            emit(c0.3, c1.3, c2.3); emit(c0.4, c1.4, c2.4); emit(c0.5, c1.5, c2.5)
        }
    }

    /// Bᵀ·(d0 … d5) for Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0],
    /// [0, −2, −1, 2, 1, 0], [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]], read and written with `stride`.
    @inline(__always)
    static func bt(_ d: UnsafeMutablePointer<SIMD8<Float>>, _ t: UnsafeMutablePointer<SIMD8<Float>>, _ stride: Int) {
        let d0 = d[0], d1 = d[stride], d2 = d[2 * stride], d3 = d[3 * stride], d4 = d[4 * stride], d5 = d[5 * stride]
        let a = d4 - 4 * d2, b = d3 - 4 * d1, e = d4 - d2, f = 2 * (d3 - d1)
        t[0] = 4 * d0 - 5 * d2 + d4
        t[stride] = a + b; t[2 * stride] = a - b
        t[3 * stride] = e + f; t[4 * stride] = e - f
        t[5 * stride] = 4 * d1 - 5 * d3 + d5
    }

    /// `v[ξ][t][c] = (Bᵀ·d·B)[ξ]` for every tile's 6×6 input patch `d` (zero outside the map);
    /// `x` is NCHW8c `[n, c, h, w]`.
    public static func transformInput(_ x: UnsafePointer<Float>, n: Int, c: Int, h: Int, w: Int, _ v: UnsafeMutablePointer<Float>) {
        let (tr, tc) = tiles(h, w)
        let tileCount = n * tr * tc, blocks = c / 8
        // Planes copied into zero-bordered ones (one pixel before, up to four after).
        let pw = 4 * tc + 2, ph = 4 * tr + 2
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), vs = SendablePointer(v)
        Parallel.chunks(n * blocks, grain: 1) { range in
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: ph * pw * 8)
            padded.initialize(repeating: 0, count: ph * pw * 8)
            let d = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: 72), t = d + 36
            defer { padded.deallocate(); d.deallocate() }
            let plane36 = tileCount * c
            for job in range {
                let image = job / blocks, cb = job % blocks
                let plane = xs.pointer + (image * blocks + cb) * h * w * 8
                for y in 0..<h { (padded + ((y + 1) * pw + 1) * 8).update(from: plane + y * w * 8, count: w * 8) }
                for ty in 0..<tr {
                    for tx in 0..<tc {
                        var row = padded + (4 * ty * pw + 4 * tx) * 8
                        for r in 0..<6 {
                            for s in 0..<6 { d[r * 6 + s] = load(row + s * 8) }
                            row += pw * 8
                        }
                        for s in 0..<6 { bt(d + s, t + s, 6) }          // Bᵀ·d, column by column
                        for r in 0..<6 { bt(t + r * 6, d + r * 6, 1) }  // (Bᵀ·d)·B, row by row
                        let out = vs.pointer + ((image * tr + ty) * tc + tx) * c + cb * 8
                        for xi in 0..<36 { store(d[xi], out + xi * plane36) }
                    }
                }
            }
        }
    }

    /// Aᵀ·(m0 … m5) for Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0], [0, 1, −1, 8, −8, 1]].
    @inline(__always)
    static func at(_ m0: SIMD8<Float>, _ m1: SIMD8<Float>, _ m2: SIMD8<Float>, _ m3: SIMD8<Float>, _ m4: SIMD8<Float>, _ m5: SIMD8<Float>)
        -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4
        return (m0 + s12 + s34, d12 + 2 * d34, s12 + 4 * s34, d12 + 8 * d34 + m5)
    }

    /// The output tiles `Aᵀ·m·A` plus `bias`, clamped at 0 when `relu`, written to `y` in NCHW8c
    /// `[n, k, h, w]`.
    public static func transformOutput(_ m: UnsafePointer<Float>, n: Int, k: Int, h: Int, w: Int, bias: UnsafePointer<Float>?, relu: Bool,
                                       _ y: UnsafeMutablePointer<Float>) {
        let (tr, tc) = tiles(h, w)
        let tileCount = n * tr * tc, blocks = k / 8
        let ms = SendablePointer(UnsafeMutablePointer(mutating: m)), ys = SendablePointer(y)
        let bs = bias.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        Parallel.chunks(n * blocks, grain: 1) { range in
            let t = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: 28)
            defer { t.deallocate() }
            let plane36 = tileCount * k
            for job in range {
                let image = job / blocks, kb = job % blocks
                let plane = ys.pointer + (image * blocks + kb) * h * w * 8
                let b = bs.map { load($0.pointer + kb * 8) } ?? SIMD8()
                for ty in 0..<tr {
                    for tx in 0..<tc {
                        let src = ms.pointer + ((image * tr + ty) * tc + tx) * k + kb * 8
                        @inline(__always) func mv(_ xi: Int) -> SIMD8<Float> { load(src + xi * plane36) }
                        // Aᵀ·m: four rows of six (t[r][q]).
                        for q in 0..<6 {
                            let r = at(mv(q), mv(6 + q), mv(12 + q), mv(18 + q), mv(24 + q), mv(30 + q))
                            t[q] = r.0; t[6 + q] = r.1; t[12 + q] = r.2; t[18 + q] = r.3
                        }
                        for r in 0..<4 {
                            let y0 = 4 * ty + r
                            guard y0 < h else { break }
                            let row = t + r * 6
                            let o = at(row[0], row[1], row[2], row[3], row[4], row[5])
                            t[24] = o.0; t[25] = o.1; t[26] = o.2; t[27] = o.3
                            for s in 0..<4 where 4 * tx + s < w {
                                var value = t[24 + s] + b
                                if relu { value = value.replacing(with: 0, where: value .< 0) }
                                store(value, plane + (y0 * w + 4 * tx + s) * 8)
                            }
                        }
                    }
                }
            }
        }
    }
}
