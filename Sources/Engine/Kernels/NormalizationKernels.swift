/// Per-channel kernels over NCHW buffers: batch statistics, channel affine maps and the fused
/// first-order batch-norm backward. Channels run in parallel.
public enum NormalizationKernels {
    /// Biased mean and variance per channel over N, H, W (two passes, in Double for stability).
    public static func statistics(_ x: UnsafePointer<Float>, n: Int, c: Int, hw: Int,
                                  mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>) {
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), ms = SendablePointer(mean), vs = SendablePointer(variance)
        Parallel.chunks(c, grain: max(1, 16_384 / max(n * hw, 1))) { channels in
            for ch in channels {
                var s = 0.0
                for b in 0..<n { s += Double(sum(xs.pointer + (b * c + ch) * hw, hw)) }
                let m = Float(s / Double(n * hw))
                var v = 0.0
                for b in 0..<n {
                    let p = xs.pointer + (b * c + ch) * hw
                    var acc = SIMD8<Float>(), i = 0
                    while i + 8 <= hw {
                        let d = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self) - m
                        acc += d * d; i += 8
                    }
                    var tail = acc.sum()
                    while i < hw { let d = p[i] - m; tail += d * d; i += 1 }
                    v += Double(tail)
                }
                ms.pointer[ch] = m
                vs.pointer[ch] = Float(v / Double(n * hw))
            }
        }
    }

    @inline(__always) static func sum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
        var acc = SIMD8<Float>(), i = 0
        while i + 8 <= count { acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self); i += 8 }
        var s = acc.sum()
        while i < count { s += p[i]; i += 1 }
        return s
    }

    /// `y[n,c,:] = x[n,c,:] * scale[c] + shift[c]`.
    public static func channelAffine(_ x: UnsafePointer<Float>, n: Int, c: Int, hw: Int, scale: UnsafePointer<Float>,
                                     shift: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), ys = SendablePointer(y)
        let ss = SendablePointer(UnsafeMutablePointer(mutating: scale)), hs = SendablePointer(UnsafeMutablePointer(mutating: shift))
        Parallel.chunks(n * c, grain: max(1, 32_768 / max(hw, 1))) { planes in
            for plane in planes {
                let ch = plane % c
                let a = ss.pointer[ch], b = hs.pointer[ch]
                let src = xs.pointer + plane * hw, dst = ys.pointer + plane * hw
                for i in 0..<hw { dst[i] = src[i] * a + b }
            }
        }
    }

    /// Per channel: `Σ gy` and `Σ gy·x` over N, H, W.
    public static func channelSums(_ gy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, n: Int, c: Int, hw: Int,
                                   sumGy: UnsafeMutablePointer<Float>, sumGyX: UnsafeMutablePointer<Float>) {
        let gs = SendablePointer(UnsafeMutablePointer(mutating: gy)), xs = SendablePointer(UnsafeMutablePointer(mutating: x))
        let s1 = SendablePointer(sumGy), s2 = SendablePointer(sumGyX)
        Parallel.chunks(c, grain: max(1, 16_384 / max(n * hw, 1))) { channels in
            for ch in channels {
                var a = 0.0, b = 0.0
                for bIdx in 0..<n {
                    let g = gs.pointer + (bIdx * c + ch) * hw, xv = xs.pointer + (bIdx * c + ch) * hw
                    var va = SIMD8<Float>(), vb = SIMD8<Float>(), i = 0
                    while i + 8 <= hw {
                        let gv = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self)
                        va += gv
                        vb += gv * UnsafeRawPointer(xv + i).loadUnaligned(as: SIMD8<Float>.self)
                        i += 8
                    }
                    var ta = va.sum(), tb = vb.sum()
                    while i < hw { ta += g[i]; tb += g[i] * xv[i]; i += 1 }
                    a += Double(ta); b += Double(tb)
                }
                s1.pointer[ch] = Float(a); s2.pointer[ch] = Float(b)
            }
        }
    }

    /// Fused training-mode batch-norm input gradient:
    /// `gx = γ·invstd·(gy − mean(gy) − x̂·mean(gy·x̂))`, with `x̂ = (x − μ)·invstd`.
    public static func batchNormBackward(_ gy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, n: Int, c: Int, hw: Int,
                                         mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                         sumGy: UnsafePointer<Float>, sumGyXhat: UnsafePointer<Float>, _ gx: UnsafeMutablePointer<Float>) {
        let m = Float(n * hw)
        var a = [Float](repeating: 0, count: c), b = [Float](repeating: 0, count: c), d = [Float](repeating: 0, count: c)
        for ch in 0..<c {
            // gx = k·gy + a·x + b with k = γ·invstd, a = −k·invstd·mean(gy·x̂), b = −k·mean(gy) − a·μ
            let k = gamma[ch] * invstd[ch]
            d[ch] = k
            a[ch] = -k * invstd[ch] * sumGyXhat[ch] / m
            b[ch] = -k * sumGy[ch] / m - a[ch] * mean[ch]
        }
        let gs = SendablePointer(UnsafeMutablePointer(mutating: gy)), xs = SendablePointer(UnsafeMutablePointer(mutating: x)), os = SendablePointer(gx)
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in d.withUnsafeBufferPointer { dp in
            let A = SendablePointer(UnsafeMutablePointer(mutating: ap.baseAddress!))
            let B = SendablePointer(UnsafeMutablePointer(mutating: bp.baseAddress!))
            let D = SendablePointer(UnsafeMutablePointer(mutating: dp.baseAddress!))
            Parallel.chunks(n * c, grain: max(1, 32_768 / max(hw, 1))) { planes in
                for plane in planes {
                    let ch = plane % c
                    let kk = D.pointer[ch], aa = A.pointer[ch], bb = B.pointer[ch]
                    let g = gs.pointer + plane * hw, xv = xs.pointer + plane * hw, o = os.pointer + plane * hw
                    for i in 0..<hw { o[i] = kk * g[i] + aa * xv[i] + bb }
                }
            }
        } } }
    }
}
