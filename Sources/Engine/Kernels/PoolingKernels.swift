/// Pooling windows along one spatial axis: output cell `i` covers input `[start[i], end[i])` and
/// divides by `extent[i]` (which may count padding, as PyTorch's `count_include_pad` does).
package struct PoolingWindows: Hashable, Sendable {
    package var start: [Int], end: [Int], extent: [Int]
    package var count: Int { start.count }

    /// Windows of a strided pooling with zero padding (PyTorch's floor mode).
    package static func strided(input: Int, kernel: Int, stride: Int, padding: Int) -> PoolingWindows {
        precondition(kernel > 0 && stride > 0 && padding >= 0 && padding * 2 <= kernel,
                     "pool: kernel \(kernel), stride \(stride), padding \(padding) (padding must be at most half the kernel)")
        let out = (input + 2 * padding - kernel) / stride + 1
        precondition(out > 0, "pool: input extent \(input) is smaller than kernel \(kernel) with padding \(padding)")
        var w = PoolingWindows(start: [], end: [], extent: [])
        for i in 0..<out {
            let s = i * stride - padding
            let e = min(s + kernel, input + padding)
            w.extent.append(e - s)
            w.start.append(max(s, 0)); w.end.append(min(e, input))
        }
        return w
    }

    /// Windows of PyTorch's adaptive average pooling.
    package static func adaptive(input: Int, output: Int) -> PoolingWindows {
        precondition(output > 0, "adaptive pool: output size must be positive, got \(output)")
        var w = PoolingWindows(start: [], end: [], extent: [])
        for i in 0..<output {
            let s = (i * input) / output, e = ((i + 1) * input + output - 1) / output
            w.start.append(s); w.end.append(e); w.extent.append(e - s)
        }
        return w
    }
}

/// Swift pooling kernels over NCHW planes, planes in parallel.
package enum PoolingKernels: EightLaneMemory {
    /// Runs `body(plane)` for each of `planes` planes of `size` values, split across the workers.
    static func forEachPlane(_ planes: Int, size: Int, _ body: (Int) -> Void) {
        Parallel.chunks(planes, grain: max(1, 16_384 / max(size, 1))) { range in
            for p in range { body(p) }
        }
    }

    /// Window averages; `planes` = N·C planes of `h`×`w`.
    package static func averageForward(_ x: UnsafePointer<Float>, planes: Int, h: Int, w: Int, rows: PoolingWindows, cols: PoolingWindows,
                                      _ y: UnsafeMutablePointer<Float>) {
        let oh = rows.count, ow = cols.count
        forEachPlane(planes, size: h * w) { p in
            let src = x + p * h * w, dst = y + p * oh * ow
            for i in 0..<oh {
                for j in 0..<ow {
                    var s: Float = 0
                    for r in rows.start[i]..<rows.end[i] { for c in cols.start[j]..<cols.end[j] { s += src[r * w + c] } }
                    dst[i * ow + j] = s / Float(rows.extent[i] * cols.extent[j])
                }
            }
        }
    }

    /// The adjoint of `averageForward`: spreads each output gradient over its window.
    package static func averageBackward(_ gy: UnsafePointer<Float>, planes: Int, h: Int, w: Int, rows: PoolingWindows, cols: PoolingWindows,
                                       _ gx: UnsafeMutablePointer<Float>) {
        let oh = rows.count, ow = cols.count
        forEachPlane(planes, size: h * w) { p in
            let src = gy + p * oh * ow, dst = gx + p * h * w
            dst.initialize(repeating: 0, count: h * w)
            for i in 0..<oh {
                for j in 0..<ow {
                    let v = src[i * ow + j] / Float(rows.extent[i] * cols.extent[j])
                    for r in rows.start[i]..<rows.end[i] { for c in cols.start[j]..<cols.end[j] { dst[r * w + c] += v } }
                }
            }
        }
    }

    /// Window maxima and, per output, the flat in-plane position (`row·w + col`) of the (first)
    /// maximum. Each plane holds `h`×`w` positions of `lanes` interleaved channels (1 for NCHW; the
    /// block of a channel-blocked layout, whose planes are one image's channel block).
    package static func maxForward(_ x: UnsafePointer<Float>, planes: Int, h: Int, w: Int, lanes: Int = 1, rows: PoolingWindows, cols: PoolingWindows,
                                  _ y: UnsafeMutablePointer<Float>, indices: UnsafeMutablePointer<Int32>) {
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), ys = SendablePointer(y), ids = SendablePointer(indices)
        let oh = rows.count, ow = cols.count
        Parallel.chunks(planes, grain: max(1, 16_384 / max(h * w * lanes, 1))) { range in
            for p in range {
                let src = xs.pointer + p * h * w * lanes, dst = ys.pointer + p * oh * ow * lanes, idx = ids.pointer + p * oh * ow * lanes
                if lanes == 8 {
                    // Eight channels of a block at once (same comparisons, vectorised).
                    for i in 0..<oh {
                        for j in 0..<ow {
                            let o = (i * ow + j) * 8
                            var best = SIMD8<Float>(repeating: -.infinity)
                            var at = SIMD8<Int32>(repeating: Int32(rows.start[i] * w + cols.start[j]))
                            for r in rows.start[i]..<rows.end[i] {
                                for c in cols.start[j]..<cols.end[j] {
                                    let position = r * w + c
                                    let v = load(src + position * 8)
                                    let take = (v .> best) .| (v .!= v)
                                    best.replace(with: v, where: take)
                                    at.replace(with: SIMD8(repeating: Int32(position)), where: take)
                                }
                            }
                            store(best, dst + o)
                            store(at, idx + o)
                        }
                    }
                    continue
                }
                for i in 0..<oh {
                    for j in 0..<ow {
                        let o = (i * ow + j) * lanes, first = rows.start[i] * w + cols.start[j]
                        for l in 0..<lanes { dst[o + l] = -Float.infinity; idx[o + l] = Int32(first) }
                        for r in rows.start[i]..<rows.end[i] {
                            for c in cols.start[j]..<cols.end[j] {
                                let at = r * w + c, v = src + at * lanes
                                for l in 0..<lanes where v[l] > dst[o + l] || v[l].isNaN { dst[o + l] = v[l]; idx[o + l] = Int32(at) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `gx[plane, indices[k], lane] += gy[plane, k, lane]` (max-pool backward: a scatter).
    package static func scatter(_ gy: UnsafePointer<Float>, planes: Int, outPerPlane: Int, inPerPlane: Int, lanes: Int = 1,
                               indices: UnsafePointer<Int32>, _ gx: UnsafeMutablePointer<Float>) {
        gx.initialize(repeating: 0, count: planes * inPerPlane * lanes)
        for p in 0..<planes {
            let g = gy + p * outPerPlane * lanes, id = indices + p * outPerPlane * lanes, d = gx + p * inPerPlane * lanes
            for k in 0..<outPerPlane { for l in 0..<lanes { d[Int(id[k * lanes + l]) * lanes + l] += g[k * lanes + l] } }
        }
    }

    /// `y[plane, k, lane] = x[plane, indices[k], lane]` (the adjoint of `scatter`: a gather).
    package static func gather(_ x: UnsafePointer<Float>, planes: Int, outPerPlane: Int, inPerPlane: Int, lanes: Int = 1,
                              indices: UnsafePointer<Int32>, _ y: UnsafeMutablePointer<Float>) {
        for p in 0..<planes {
            let s = x + p * inPerPlane * lanes, id = indices + p * outPerPlane * lanes, d = y + p * outPerPlane * lanes
            for k in 0..<outPerPlane { for l in 0..<lanes { d[k * lanes + l] = s[Int(id[k * lanes + l]) * lanes + l] } }
        }
    }
}
