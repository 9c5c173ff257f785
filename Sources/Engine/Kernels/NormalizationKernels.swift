import CKernels

/// How per-channel kernels see an activation buffer: `n` images of `c` channels and `hw` positions,
/// with channels grouped in blocks of `block` lanes (1 = plain NCHW; 8 or 16 = oneDNN's NCHW{8,16}c).
/// Value (image, channel, position) sits at `((image·c/block + channel/block)·hw + position)·block +
/// channel % block`.
package struct ChannelLayout: Sendable {
    package let n, c, hw, block: Int
    package init(n: Int, c: Int, hw: Int, block: Int = 1) {
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
package enum NormalizationKernels: EightLaneMemory {

    /// What `channelReduce` sums per channel.
    enum ChannelReduction {
        /// Σ x
        case sum
        /// Σ (x − shift[c]) into `first` and Σ (x − shift[c])² into `second`
        case shiftedMoments(UnsafePointer<Float>)
        /// Σ x into `first` and Σ x·(y − center[c]) into `second`
        case sumAndCenteredDot(UnsafePointer<Float>, center: UnsafePointer<Float>)
        /// As `sumAndCenteredDot` with x zeroed where `mask ≤ 0`
        case maskedSumAndCenteredDot(UnsafePointer<Float>, center: UnsafePointer<Float>, mask: UnsafePointer<Float>)
    }

    /// The eight lanes of `v` as a float pointer.
    @inline(__always)
    static func withLanes<R>(_ v: inout SIMD8<Float>, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        withUnsafeMutablePointer(to: &v) { $0.withMemoryRebound(to: Float.self, capacity: 8, body) }
    }

    /// Per-channel sums over images and positions (Float within a chunk, Double across chunks).
    static func channelReduce(_ x: UnsafePointer<Float>, _ reduction: ChannelReduction, _ l: ChannelLayout,
                              first: UnsafeMutablePointer<Double>, second: UnsafeMutablePointer<Double>? = nil) {
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), fs = SendablePointer(first)
        let sc = second.map { SendablePointer($0) }
        var mode = 0
        var other = SendablePointer(UnsafeMutablePointer(mutating: x)), maskPointer = other, centerPointer = other
        switch reduction {
        case .sum: break
        case .shiftedMoments(let shift): mode = 1; centerPointer = SendablePointer(UnsafeMutablePointer(mutating: shift))
        case .sumAndCenteredDot(let y, let center):
            mode = 2; other = SendablePointer(UnsafeMutablePointer(mutating: y)); centerPointer = SendablePointer(UnsafeMutablePointer(mutating: center))
        case .maskedSumAndCenteredDot(let y, let center, let mask):
            mode = 3; other = SendablePointer(UnsafeMutablePointer(mutating: y)); maskPointer = SendablePointer(UnsafeMutablePointer(mutating: mask))
            centerPointer = SendablePointer(UnsafeMutablePointer(mutating: center))
        }
        let m = mode, op = other, mp = maskPointer, cp = centerPointer
        Parallel.chunks(l.channelBlocks, grain: max(1, 16_384 / max(l.n * l.hw * l.block, 1))) { blocks in
            for cb in blocks {
                // Lanes handled together: one channel (plain: eight positions per vector) or eight
                // channels of a block (one position per vector).
                for v in stride(from: 0, to: l.block, by: 8) {
                    let channel = cb * l.block + v
                    let plain = l.block == 1
                    let lanes = plain ? 1 : 8
                    let count = plain ? l.hw / 8 : l.hw, step = plain ? 8 : l.block
                    let shift: SIMD8<Float> = m == 0 ? SIMD8() : (plain ? SIMD8(repeating: cp.pointer[channel]) : load(cp.pointer + channel))
                    var a = SIMD8<Double>(), b = SIMD8<Double>()
                    if !plain {
                        // Blocked: every image's eight channel sums in one CKernels call.
                        var shiftLanes = shift
                        let offset = l.chunk(0, cb) + v, imageStride = l.chunk(1, cb) - l.chunk(0, cb)
                        withLanes(&shiftLanes) { sp in
                            withUnsafeMutablePointer(to: &a) { ap in withUnsafeMutablePointer(to: &b) { bp in
                                ap.withMemoryRebound(to: Double.self, capacity: 8) { ad in bp.withMemoryRebound(to: Double.self, capacity: 8) { bd in
                                    mmkd_reduce_vectors_over_images(Int32(m), xs.pointer + offset, op.pointer + offset, mp.pointer + offset, sp,
                                                                    l.n, imageStride, count, step, ad, bd)
                                } }
                            } }
                        }
                    }
                    if plain {
                        // Plain: each image's eight lane sums from one CKernels call, then the lanes and
                        // the positions past the last full vector, image by image.
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * l.n) { lanesBuffer in
                            let va = lanesBuffer.baseAddress!, vb = va + 8 * l.n
                            var shiftLanes = shift
                            let offset = l.chunk(0, cb) + v, imageStride = l.chunk(1, cb) - l.chunk(0, cb)
                            withLanes(&shiftLanes) { sp in
                                mmkd_reduce_vectors_per_image(Int32(m), xs.pointer + offset, op.pointer + offset, mp.pointer + offset, sp,
                                                              l.n, imageStride, count, step, va, vb)
                            }
                            for image in 0..<l.n {
                                let offset = l.chunk(image, cb) + v
                                var ta = load(va + 8 * image).sum(), tb = load(vb + 8 * image).sum()
                                let p = xs.pointer + offset, q = op.pointer + offset, mk = mp.pointer + offset
                                for i in (count * 8)..<l.hw {
                                    switch m {
                                    case 0: ta += p[i]
                                    case 1: let d = p[i] - shift[0]; ta += d; tb += d * d
                                    case 2: ta += p[i]; tb += p[i] * (q[i] - shift[0])
                                    default: let xv = mk[i] > 0 ? p[i] : 0; ta += xv; tb += xv * (q[i] - shift[0])
                                    }
                                }
                                a[0] += Double(ta); b[0] += Double(tb)
                            }
                        }
                    }
                    for lane in 0..<lanes { fs.pointer[channel + lane] = a[lane]; sc?.pointer[channel + lane] = b[lane] }
                }
            }
        }
    }

    /// Biased mean and variance per channel in one pass, with moments taken about each channel's
    /// first value (a shift close to the mean keeps the one-pass formula accurate).
    package static func statistics(_ x: UnsafePointer<Float>, _ l: ChannelLayout,
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

    /// Per channel: `Σ gy` and `Σ gy·(x − center[c])`, with `gy` zeroed where `mask ≤ 0` when a mask
    /// is given (a fused ReLU's backward). Centring inside the sum (rather than subtracting
    /// `center·Σ gy` afterwards) keeps it accurate when a channel's mean is large against its spread.
    package static func channelSums(_ gy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, center: UnsafePointer<Float>,
                                   mask: UnsafePointer<Float>? = nil, _ l: ChannelLayout,
                                   sumGy: UnsafeMutablePointer<Float>, sumGyCentered: UnsafeMutablePointer<Float>) {
        let a = UnsafeMutablePointer<Double>.allocate(capacity: l.c), b = UnsafeMutablePointer<Double>.allocate(capacity: l.c)
        defer { a.deallocate(); b.deallocate() }
        channelReduce(gy, mask.map { .maskedSumAndCenteredDot(x, center: center, mask: $0) } ?? .sumAndCenteredDot(x, center: center), l, first: a, second: b)
        for ch in 0..<l.c { sumGy[ch] = Float(a[ch]); sumGyCentered[ch] = Float(b[ch]) }
    }

    /// One channel-map loop over `count` vectors `step` floats apart, for one combination of
    /// options (CKernels' `mmkd_map_vectors`, AVX2 or portable, chosen at run time).
    @inline(__always)
    static func mapVectors(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>?, _ mask: UnsafePointer<Float>?, masksOutput: Bool = false, relu: Bool,
                           a: SIMD8<Float>, k: SIMD8<Float>, center: SIMD8<Float>, b: SIMD8<Float>, _ o: UnsafeMutablePointer<Float>, count: Int, step: Int) {
        let variant: Int32
        switch (q, mask, relu) {
        case (nil, nil, false): variant = 0
        case (nil, nil, true): variant = 1
        case (_?, nil, _): variant = 2
        case (_?, _?, _): variant = masksOutput ? 4 : 3
        default: preconditionFailure("channelMap: a mask needs a second input")
        }
        var a = a, k = k, center = center, b = b
        withLanes(&a) { ap in withLanes(&k) { kp in withLanes(&center) { cp in withLanes(&b) { bp in
            mmkd_map_vectors(variant, p, q ?? p, mask ?? p, ap, kp, cp, bp, o, count, step)
        } } } }
    }

    /// `out = x'·scale[c] + (y − yCenter[c])·yScale[c] + shift[c]` per channel, where `x' = x` or, with
    /// `mask`, `x' = mask > 0 ? x : 0` — or, with `masksOutput`, the whole result zeroed where
    /// `mask ≤ 0` instead —; with `relu` the result is clamped at 0. (`y` optional, needed with a
    /// mask; without `yCenter`, 0.) `out` may be `x` or `y`: each value is read before its own is
    /// written.
    static func channelMap(_ x: UnsafePointer<Float>, scale: UnsafePointer<Float>, _ y: UnsafePointer<Float>?, yScale: UnsafePointer<Float>?,
                           yCenter: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>, mask: UnsafePointer<Float>? = nil,
                           masksOutput: Bool = false, relu: Bool = false, _ l: ChannelLayout, _ out: UnsafeMutablePointer<Float>) {
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), os = SendablePointer(out)
        let ys = y.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        let ms = mask.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        let sc = SendablePointer(UnsafeMutablePointer(mutating: scale)), sh = SendablePointer(UnsafeMutablePointer(mutating: shift))
        let ysc = yScale.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        let yce = yCenter.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        let chunkSize = l.hw * l.block
        let plain = l.block == 1
        Parallel.chunks(l.n * l.channelBlocks, grain: max(1, 32_768 / max(chunkSize, 1))) { chunks in
            for index in chunks {
                let cb = index % l.channelBlocks
                let base = index * chunkSize
                for v in stride(from: 0, to: l.block, by: 8) {
                    let channel = cb * l.block + v
                    // Plain: one channel per chunk, eight positions per vector; blocked: eight channels
                    // per vector, one position, `block` floats apart.
                    let count = plain ? l.hw / 8 : l.hw, step = plain ? 8 : l.block
                    let a = plain ? SIMD8(repeating: sc.pointer[channel]) : load(sc.pointer + channel)
                    let b = plain ? SIMD8(repeating: sh.pointer[channel]) : load(sh.pointer + channel)
                    let k = ysc.map { plain ? SIMD8(repeating: $0.pointer[channel]) : load($0.pointer + channel) } ?? SIMD8()
                    let center = yce.map { plain ? SIMD8(repeating: $0.pointer[channel]) : load($0.pointer + channel) } ?? SIMD8()
                    let p = xs.pointer + base + v, o = os.pointer + base + v
                    let q = ys.map { UnsafePointer($0.pointer + base + v) }, m = ms.map { UnsafePointer($0.pointer + base + v) }
                    mapVectors(p, q, m, masksOutput: masksOutput, relu: relu, a: a, k: k, center: center, b: b, o, count: count, step: step)
                    if plain {
                        for i in (count * 8)..<l.hw {
                            var xv = p[i]
                            if let m, m[i] <= 0, !masksOutput { xv = 0 }
                            var r = xv * a[0] + b[0]
                            if let q { r += (q[i] - center[0]) * k[0] }
                            if let m, m[i] <= 0, masksOutput { r = 0 }
                            o[i] = relu ? Swift.max(r, 0) : r
                        }
                    }
                }
            }
        }
    }

    /// `y = x·scale[c] + shift[c]`, or `max(that, 0)` with `relu`.
    package static func channelAffine(_ x: UnsafePointer<Float>, _ l: ChannelLayout, scale: UnsafePointer<Float>,
                                     shift: UnsafePointer<Float>, relu: Bool = false, _ y: UnsafeMutablePointer<Float>) {
        channelMap(x, scale: scale, nil, yScale: nil, shift: shift, relu: relu, l, y)
    }

    /// Fused training-mode batch-norm input gradient:
    /// `gx = γ·invstd·(gy − mean(gy) − x̂·mean(gy·x̂))`, with `x̂ = (x − μ)·invstd`, computed as
    /// `k·gy + a·(x − μ) + b` per channel; with `mask`, `gy` is first zeroed where `mask ≤ 0` (a fused
    /// ReLU's backward; the sums must have been taken with the same mask). The means are over
    /// `count` values per channel (nil: n·hw; more when the sums are a larger batch's, of which
    /// this buffer is a slice).
    package static func batchNormBackward(_ gy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, mask: UnsafePointer<Float>? = nil, _ l: ChannelLayout,
                                         count: Int? = nil, mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                         sumGy: UnsafePointer<Float>, sumGyXhat: UnsafePointer<Float>, _ gx: UnsafeMutablePointer<Float>) {
        let m = Float(count ?? l.n * l.hw)
        var k = [Float](repeating: 0, count: l.c), a = k, b = k
        for ch in 0..<l.c {
            k[ch] = gamma[ch] * invstd[ch]
            a[ch] = -k[ch] * invstd[ch] * sumGyXhat[ch] / m
            b[ch] = -k[ch] * sumGy[ch] / m
        }
        channelMap(gy, scale: k, x, yScale: a, yCenter: mean, shift: b, mask: mask, l, gx)
    }

    // MARK: Second order: the derivatives of the fused backward's results

    // The fused backward gives gx (above), gγ = Σ gy′·x̂ and gβ = Σ gy′, with gy′ = gy zeroed where
    // mask ≤ 0 and x̂ = (x − μ)·s, s = invstd. Below, for an upstream gradient of each, its
    // derivatives with respect to gy, x and γ (PyTorch's `batchnorm_double_backward`): the
    // first-order evaluation of the derivative of `Derivatives.batchNormBackward`, with the statistics
    // saved by the forward. `sumGy`, `sumGyCentered` are the first backward's Σ gy′ and Σ gy′·(x − μ);
    // M = n·hw. Outputs that are nil are not computed.
    //
    // When this buffer is one process's slice of a data-parallel batch (`count` = M over the whole
    // batch), the statistics and the first backward's sums are the whole batch's, and the
    // reductions these kernels take over u, a or b are summed over the group by the caller's hook;
    // ∂γ stays this process's share.

    /// For an upstream `u` of gx (shaped as x): ∂gy = mask·(γs·u − γs³·Σu(x−μ)/M·(x−μ) − γs·Σu/M),
    /// ∂x = u·C + (x−μ)·A + gy′·B + D (coefficients below), ∂γ = s·(Σu·gy′ − Σu·Σgy′/M −
    /// s²·Σu(x−μ)·Σgy′(x−μ)/M). Two reductions and up to three maps.
    package static func batchNormInputGradientBackward(_ u: UnsafePointer<Float>, _ gy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                                      mask: UnsafePointer<Float>?, _ l: ChannelLayout, mean: UnsafePointer<Float>,
                                                      invstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                                      sumGy: UnsafePointer<Float>, sumGyCentered: UnsafePointer<Float>,
                                                      count: Int? = nil,
                                                      sumAcrossReplicas: ((UnsafeMutableBufferPointer<Double>) -> Void)? = nil,
                                                      gradGy: UnsafeMutablePointer<Float>?, gradX: UnsafeMutablePointer<Float>?,
                                                      gradGamma: UnsafeMutablePointer<Float>?) {
        let c = l.c, m = Double(count ?? l.n * l.hw)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 6 * c), dots = UnsafeMutablePointer<Double>.allocate(capacity: 2 * c)
        defer { scratch.deallocate(); dots.deallocate() }
        let (scale, yScale, shift, zeros, su, sux) = (scratch, scratch + c, scratch + 2 * c, scratch + 3 * c, scratch + 4 * c, scratch + 5 * c)
        zeros.initialize(repeating: 0, count: c)
        // Σ u, Σ u·(x − μ); Σ u·gy′ (into dots[c...])
        channelSums(u, x, center: mean, l, sumGy: su, sumGyCentered: sux)
        channelReduce(u, mask.map { .maskedSumAndCenteredDot(gy, center: zeros, mask: $0) } ?? .sumAndCenteredDot(gy, center: zeros),
                      l, first: dots, second: dots + c)
        // This process's Σ u, Σ u·(x − μ), Σ u·gy′ (for ∂γ) and, over a group, the whole batch's.
        var local = [Double](repeating: 0, count: 3 * c)
        for ch in 0..<c { local[ch] = Double(su[ch]); local[c + ch] = Double(sux[ch]); local[2 * c + ch] = dots[c + ch] }
        var whole = local
        if let sumAcrossReplicas { whole.withUnsafeMutableBufferPointer { sumAcrossReplicas($0) } }
        struct Sums { var g, s, s3, su, sux, sg, sgx, sgu: Double }
        func sums(_ ch: Int, _ u: [Double]) -> Sums {
            let s = Double(invstd[ch])
            return Sums(g: Double(gamma[ch]), s: s, s3: s * s * s, su: u[ch], sux: u[c + ch], sg: Double(sumGy[ch]),
                        sgx: Double(sumGyCentered[ch]), sgu: u[2 * c + ch])
        }
        if let gradGy {
            for ch in 0..<c {
                let k = sums(ch, whole)
                scale[ch] = Float(k.g * k.s); yScale[ch] = Float(-k.g * k.s3 * k.sux / m); shift[ch] = Float(-k.g * k.s * k.su / m)
            }
            channelMap(u, scale: scale, x, yScale: yScale, yCenter: mean, shift: shift, mask: mask, masksOutput: true, l, gradGy)
        }
        if let gradX {
            // A = γs³·(Σu·Σgy′/M − Σu·gy′ + 3s²·Σgy′(x−μ)·Σu(x−μ)/M)/M, B = −γs³·Σu(x−μ)/M,
            // C = −γs³·Σgy′(x−μ)/M, D = γs³·(Σu(x−μ)·Σgy′ + Σgy′(x−μ)·Σu)/M²
            for ch in 0..<c {
                let k = sums(ch, whole)
                let allSub = k.su * k.sg / m - k.sgu + 3 * k.s * k.s * k.sgx * k.sux / m
                scale[ch] = Float(-k.g * k.s3 * k.sgx / m)
                yScale[ch] = Float(k.g * k.s3 * allSub / m)
                shift[ch] = Float(k.g * k.s3 * (k.sux * k.sg + k.sgx * k.su) / (m * m))
            }
            channelMap(u, scale: scale, x, yScale: yScale, yCenter: mean, shift: shift, l, gradX)
            for ch in 0..<c { let k = sums(ch, whole); scale[ch] = Float(-k.g * k.s3 * k.sux / m); yScale[ch] = 1 }
            channelMap(gy, scale: scale, gradX, yScale: yScale, shift: zeros, mask: mask, l, gradX)
        }
        if let gradGamma {
            for ch in 0..<c {
                let k = sums(ch, local)
                gradGamma[ch] = Float(k.s * (k.sgu - k.su * k.sg / m - k.s * k.s * k.sux * k.sgx / m))
            }
        }
    }

    /// For an upstream `a` of gγ (per channel): ∂gy = mask·a·s·(x − μ), ∂x = a·(s·gy′ − s·Σgy′/M −
    /// s³·Σgy′(x−μ)/M·(x − μ)); gγ does not depend on γ. One map each. Over a group,
    /// `weightedSums` holds the whole batch's Σ a·Σgy′ and Σ a·Σgy′(x−μ) (each process's products,
    /// summed; 2c values) for ∂x.
    package static func batchNormWeightGradientBackward(_ a: UnsafePointer<Float>, _ gy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                                       mask: UnsafePointer<Float>?, _ l: ChannelLayout, mean: UnsafePointer<Float>,
                                                       invstd: UnsafePointer<Float>, sumGy: UnsafePointer<Float>,
                                                       sumGyCentered: UnsafePointer<Float>, count: Int? = nil, weightedSums: [Double]? = nil,
                                                       gradGy: UnsafeMutablePointer<Float>?, gradX: UnsafeMutablePointer<Float>?) {
        let c = l.c, m = Double(count ?? l.n * l.hw)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 3 * c)
        defer { scratch.deallocate() }
        let (scale, yScale, shift) = (scratch, scratch + c, scratch + 2 * c)
        if let gradGy {
            // x·0 + (x − μ)·a·s + 0, zeroed where mask ≤ 0 (centred in the map: no cancellation)
            for ch in 0..<c { scale[ch] = 0; yScale[ch] = a[ch] * invstd[ch]; shift[ch] = 0 }
            channelMap(x, scale: scale, x, yScale: yScale, yCenter: mean, shift: shift, mask: mask, masksOutput: true, l, gradGy)
        }
        if let gradX {
            for ch in 0..<c {
                let (s, ac) = (Double(invstd[ch]), Double(a[ch]))
                scale[ch] = Float(ac * s)
                if let w = weightedSums {
                    yScale[ch] = Float(-s * s * s * w[c + ch] / m)
                    shift[ch] = Float(-s * w[ch] / m)
                } else {
                    yScale[ch] = Float(-ac * s * s * s * Double(sumGyCentered[ch]) / m)
                    shift[ch] = Float(-ac * s * Double(sumGy[ch]) / m)
                }
            }
            channelMap(gy, scale: scale, x, yScale: yScale, yCenter: mean, shift: shift, mask: mask, l, gradX)
        }
    }

    /// For an upstream `b` of gβ (per channel): ∂gy = mask·b; gβ depends on neither x nor γ.
    package static func batchNormBiasGradientBackward(_ b: UnsafePointer<Float>, _ x: UnsafePointer<Float>, mask: UnsafePointer<Float>?,
                                                     _ l: ChannelLayout, _ gradGy: UnsafeMutablePointer<Float>) {
        let zeros = UnsafeMutablePointer<Float>.allocate(capacity: l.c)
        defer { zeros.deallocate() }
        zeros.initialize(repeating: 0, count: l.c)
        channelMap(x, scale: zeros, mask.map { _ in x }, yScale: zeros, shift: b, mask: mask, masksOutput: true, l, gradGy)
    }
}
