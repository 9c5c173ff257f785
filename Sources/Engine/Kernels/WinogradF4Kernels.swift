/// Winograd F(4×4, 3×3) kernels (Lavin & Gray, 2016; interpolation points 0, ±1, ±2) for 3×3,
/// stride-1, padding-1 convolutions over NCHW8c activations: each 4×4 output tile is
/// `Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A` for the 6×6 input patch `d`, the products summed over input
/// channels as 36 matrix products. 36 multiplications per tile and channel pair instead of 144
/// (F(2×2, 3×3): 64), at the price of larger transform constants and so a few more ulps of
/// rounding: used for inference (frozen teachers), see `WinogradPolicy`.
///
/// Buffers as in `WinogradKernels`, with 36 positions ξ: `u[ξ][c][k]`, `v[ξ][t][c]`, `m[ξ][t][k]`.
package enum WinogradF4Kernels: EightLaneMemory {
    /// G·(a, b, c) for G = [[¼, 0, 0], [−⅙, −⅙, −⅙], [−⅙, ⅙, −⅙], [1/24, 1/12, ⅙], [1/24, −1/12, ⅙], [0, 0, 1]].
    @inline(__always)
    static func g(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>)
        -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let ac = a + c, q = a * (1 / 24) + c * (1 / 6), r = b * (1 / 12)
        return (a * 0.25, (ac + b) * (-1 / 6), (ac - b) * (-1 / 6), q + r, q - r, c)
    }

    /// `u[ξ][c][k] = (G·g[k][c]·Gᵀ)[ξ]` for plain weights `[k, c, 3, 3]` (`flipped`: the transposed
    /// convolution's `u[ξ][k][c] = (G·rot180(g[k][c])·Gᵀ)[ξ]`), eight filter columns at a time.
    package static func transformFilters(_ weights: UnsafePointer<Float>, outChannels k: Int, inChannels c: Int, flipped: Bool = false,
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

    /// `v[ξ][t][c] = (Bᵀ·d·B)[ξ]` for every tile's 6×6 input patch `d` (zero outside the map), with
    /// Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0], [0, −2, −1, 2, 1, 0],
    /// [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]]; `x` is NCHW8c `[n, c, h, w]`.
    package static func transformInput(_ x: UnsafePointer<Float>, n: Int, c: Int, h: Int, w: Int, _ v: UnsafeMutablePointer<Float>) {
        WinogradKernels.inputTiles(x, n: n, c: c, h: h, w: w, outputTile: 4, v)
    }

    /// The output tiles `Aᵀ·m·A` plus `bias`, clamped at 0 when `relu`, written to `y` in NCHW8c
    /// `[n, k, h, w]`, with Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0],
    /// [0, 1, −1, 8, −8, 1]].
    package static func transformOutput(_ m: UnsafePointer<Float>, n: Int, k: Int, h: Int, w: Int, bias: UnsafePointer<Float>?, relu: Bool,
                                       _ y: UnsafeMutablePointer<Float>) {
        WinogradKernels.outputTiles(m, n: n, k: k, h: h, w: w, outputTile: 4, bias: bias, relu: relu, y)
    }
}
