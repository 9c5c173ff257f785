/// How per-channel kernels see an activation buffer: `n` images of `c` channels and `hw` positions,
/// with channels grouped in blocks of `block` lanes (1 = plain NCHW; 8 or 16 = oneDNN's NCHW{8,16}c).
/// Value (image, channel, position) sits at `((image·c/block + channel/block)·hw + position)·block +
/// channel % block`.
public struct ChannelLayout: Sendable {
    public let n, c, hw, block: Int
    public init(n: Int, c: Int, hw: Int, block: Int = 1) {
        precondition(block == 1 || block % 8 == 0, "ChannelLayout: block \(block) must be 1 or a multiple of 8")
        precondition(c % block == 0, "ChannelLayout: \(c) channels do not fill blocks of \(block)")
        self.n = n; self.c = c; self.hw = hw; self.block = block
    }
    var channelBlocks: Int { c / block }
    /// Offset of the chunk holding channel block `cb` of image `image` (hw·block values).
    @inline(__always) func chunk(_ image: Int, _ cb: Int) -> Int { (image * channelBlocks + cb) * hw * block }
}

/// Per-channel kernels over activation buffers: batch statistics, channel affine maps and the fused
/// first-order batch-norm backward. Channel blocks run in parallel.
public enum NormalizationKernels {
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
    @inline(__always) static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }

    /// What `channelReduce` sums per channel.
    enum ChannelReduction {
        /// Σ x
        case sum
        /// Σ (x − shift[c]) into `first` and Σ (x − shift[c])² into `second`
        case shiftedMoments(UnsafePointer<Float>)
        /// Σ x into `first` and Σ x·y into `second`
        case sumAndDot(UnsafePointer<Float>)
    }

    /// Per-channel sums over images and positions (Float within a chunk, Double across chunks).
    static func channelReduce(_ x: UnsafePointer<Float>, _ reduction: ChannelReduction, _ l: ChannelLayout,
                              first: UnsafeMutablePointer<Double>, second: UnsafeMutablePointer<Double>? = nil) {
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), fs = SendablePointer(first)
        let sc = second.map { SendablePointer($0) }
        var mode = 0
        var other = SendablePointer(UnsafeMutablePointer(mutating: x))
        switch reduction {
        case .sum: break
        case .shiftedMoments(let shift): mode = 1; other = SendablePointer(UnsafeMutablePointer(mutating: shift))
        case .sumAndDot(let y): mode = 2; other = SendablePointer(UnsafeMutablePointer(mutating: y))
        }
        let m = mode, op = other
        Parallel.chunks(l.channelBlocks, grain: max(1, 16_384 / max(l.n * l.hw * l.block, 1))) { blocks in
            for cb in blocks {
                // Lanes handled together: one channel (plain) or eight of a block.
                for v in stride(from: 0, to: l.block, by: 8) {
                    let channel = cb * l.block + v
                    let lanes = l.block == 1 ? 1 : 8
                    var a = [Double](repeating: 0, count: lanes), b = a
                    for image in 0..<l.n {
                        let p = xs.pointer + l.chunk(image, cb) + v
                        var va = SIMD8<Float>(), vb = SIMD8<Float>()
                        if l.block == 1 {
                            let shift = SIMD8<Float>(repeating: m == 1 ? op.pointer[channel] : 0)
                            let q = op.pointer + l.chunk(image, cb)
                            var i = 0
                            while i + 8 <= l.hw {
                                let xv = load(p + i)
                                switch m {
                                case 0: va += xv
                                case 1: let d = xv - shift; va += d; vb += d * d
                                default: va += xv; vb += xv * load(q + i)
                                }
                                i += 8
                            }
                            var ta = va.sum(), tb = vb.sum()
                            while i < l.hw {
                                switch m {
                                case 0: ta += p[i]
                                case 1: let d = p[i] - shift[0]; ta += d; tb += d * d
                                default: ta += p[i]; tb += p[i] * q[i]
                                }
                                i += 1
                            }
                            a[0] += Double(ta); b[0] += Double(tb)
                        } else {
                            let shift = m == 1 ? load(op.pointer + channel) : SIMD8<Float>()
                            let q = op.pointer + l.chunk(image, cb) + v
                            for i in 0..<l.hw {
                                let xv = load(p + i * l.block)
                                switch m {
                                case 0: va += xv
                                case 1: let d = xv - shift; va += d; vb += d * d
                                default: va += xv; vb += xv * load(q + i * l.block)
                                }
                            }
                            for lane in 0..<8 { a[lane] += Double(va[lane]); b[lane] += Double(vb[lane]) }
                        }
                    }
                    for lane in 0..<lanes { fs.pointer[channel + lane] = a[lane]; sc?.pointer[channel + lane] = b[lane] }
                }
            }
        }
    }

    /// Biased mean and variance per channel in one pass, with moments taken about each channel's
    /// first value (a shift close to the mean keeps the one-pass formula accurate).
    public static func statistics(_ x: UnsafePointer<Float>, _ l: ChannelLayout,
                                  mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>) {
        let s1 = UnsafeMutablePointer<Double>.allocate(capacity: l.c), s2 = UnsafeMutablePointer<Double>.allocate(capacity: l.c)
        let shift = UnsafeMutablePointer<Float>.allocate(capacity: l.c)
        defer { s1.deallocate(); s2.deallocate(); shift.deallocate() }
        for ch in 0..<l.c { shift[ch] = x[l.chunk(0, ch / l.block) + ch % l.block] }
        channelReduce(x, .shiftedMoments(shift), l, first: s1, second: s2)
        let m = Double(l.n * l.hw)
        for ch in 0..<l.c {
            let d = s1[ch] / m
            mean[ch] = Float(Double(shift[ch]) + d)
            variance[ch] = Float(Swift.max(s2[ch] / m - d * d, 0))
        }
    }

    /// Per channel: `Σ gy` and `Σ gy·x`.
    public static func channelSums(_ gy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ l: ChannelLayout,
                                   sumGy: UnsafeMutablePointer<Float>, sumGyX: UnsafeMutablePointer<Float>) {
        let a = UnsafeMutablePointer<Double>.allocate(capacity: l.c), b = UnsafeMutablePointer<Double>.allocate(capacity: l.c)
        defer { a.deallocate(); b.deallocate() }
        channelReduce(gy, .sumAndDot(x), l, first: a, second: b)
        for ch in 0..<l.c { sumGy[ch] = Float(a[ch]); sumGyX[ch] = Float(b[ch]) }
    }

    /// `out = x·scale[c] + y·yScale[c] + shift[c]` per channel (`y` optional).
    static func channelMap(_ x: UnsafePointer<Float>, scale: UnsafePointer<Float>, _ y: UnsafePointer<Float>?, yScale: UnsafePointer<Float>?,
                           shift: UnsafePointer<Float>, _ l: ChannelLayout, _ out: UnsafeMutablePointer<Float>) {
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), os = SendablePointer(out)
        let ys = y.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        let sc = SendablePointer(UnsafeMutablePointer(mutating: scale)), sh = SendablePointer(UnsafeMutablePointer(mutating: shift))
        let ysc = yScale.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        let chunkSize = l.hw * l.block
        Parallel.chunks(l.n * l.channelBlocks, grain: max(1, 32_768 / max(chunkSize, 1))) { chunks in
            for index in chunks {
                let cb = index % l.channelBlocks
                let base = index * chunkSize
                let p = xs.pointer + base, o = os.pointer + base, q = ys.map { $0.pointer + base }
                if l.block == 1 {
                    let a = sc.pointer[cb], b = sh.pointer[cb], k = ysc?.pointer[cb] ?? 0
                    if let q { for i in 0..<l.hw { o[i] = p[i] * a + q[i] * k + b } } else { for i in 0..<l.hw { o[i] = p[i] * a + b } }
                } else {
                    for v in stride(from: 0, to: l.block, by: 8) {
                        let channel = cb * l.block + v
                        let a = load(sc.pointer + channel), b = load(sh.pointer + channel)
                        if let q {
                            let k = load(ysc!.pointer + channel)
                            for i in 0..<l.hw { let at = i * l.block + v; store(load(p + at) * a + load(q + at) * k + b, o + at) }
                        } else {
                            for i in 0..<l.hw { let at = i * l.block + v; store(load(p + at) * a + b, o + at) }
                        }
                    }
                }
            }
        }
    }

    /// `y = x·scale[c] + shift[c]`.
    public static func channelAffine(_ x: UnsafePointer<Float>, _ l: ChannelLayout, scale: UnsafePointer<Float>,
                                     shift: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        channelMap(x, scale: scale, nil, yScale: nil, shift: shift, l, y)
    }

    /// Fused training-mode batch-norm input gradient:
    /// `gx = γ·invstd·(gy − mean(gy) − x̂·mean(gy·x̂))`, with `x̂ = (x − μ)·invstd`, computed as
    /// `k·gy + a·x + b` per channel.
    public static func batchNormBackward(_ gy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ l: ChannelLayout,
                                         mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                         sumGy: UnsafePointer<Float>, sumGyXhat: UnsafePointer<Float>, _ gx: UnsafeMutablePointer<Float>) {
        let m = Float(l.n * l.hw)
        var k = [Float](repeating: 0, count: l.c), a = k, b = k
        for ch in 0..<l.c {
            k[ch] = gamma[ch] * invstd[ch]
            a[ch] = -k[ch] * invstd[ch] * sumGyXhat[ch] / m
            b[ch] = -k[ch] * sumGy[ch] / m - a[ch] * mean[ch]
        }
        channelMap(gy, scale: k, x, yScale: a, shift: b, l, gx)
    }
}
