import Engine

/// Naive reference kernels: straight loops in Double, the oracles for the fast kernels.
enum Reference {
    static func conv2d(_ x: Tensor, _ w: Tensor, bias: Tensor?, _ g: ConvGeometry) -> [Double] {
        let (n, c, h, wd) = (g.batch, g.inChannels, g.height, g.width)
        let (o, oh, ow) = (g.outChannels, g.outHeight, g.outWidth)
        let cg = c / g.groups, og = o / g.groups
        let xs = x.scalars, ws = w.scalars, bs = bias?.scalars
        var out = [Double](repeating: 0, count: n * o * oh * ow)
        for b in 0..<n { for oc in 0..<o {
            let grp = oc / og
            for i in 0..<oh { for j in 0..<ow {
                var s = bs.map { Double($0[oc]) } ?? 0
                for ic in 0..<cg { for ki in 0..<g.kernelH { for kj in 0..<g.kernelW {
                    let r = i * g.strideH - g.padH + ki * g.dilationH, col = j * g.strideW - g.padW + kj * g.dilationW
                    guard r >= 0 && r < h && col >= 0 && col < wd else { continue }
                    let xv = xs[((b * c + grp * cg + ic) * h + r) * wd + col]
                    s += Double(xv) * Double(ws[((oc * cg + ic) * g.kernelH + ki) * g.kernelW + kj])
                } } }
                out[((b * o + oc) * oh + i) * ow + j] = s
            } }
        } }
        return out
    }

    /// Gradients of ⟨gy, conv(x, w)⟩ by the transposed loops.
    static func conv2dBackward(_ x: Tensor, _ w: Tensor, _ gy: Tensor, _ g: ConvGeometry) -> (dx: [Double], dw: [Double]) {
        let (n, c, h, wd) = (g.batch, g.inChannels, g.height, g.width)
        let (o, oh, ow) = (g.outChannels, g.outHeight, g.outWidth)
        let cg = c / g.groups, og = o / g.groups
        let xs = x.scalars, ws = w.scalars, gs = gy.scalars
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        for b in 0..<n { for oc in 0..<o {
            let grp = oc / og
            for i in 0..<oh { for j in 0..<ow {
                let gv = Double(gs[((b * o + oc) * oh + i) * ow + j])
                for ic in 0..<cg { for ki in 0..<g.kernelH { for kj in 0..<g.kernelW {
                    let r = i * g.strideH - g.padH + ki * g.dilationH, col = j * g.strideW - g.padW + kj * g.dilationW
                    guard r >= 0 && r < h && col >= 0 && col < wd else { continue }
                    let xi = ((b * c + grp * cg + ic) * h + r) * wd + col
                    let wi = ((oc * cg + ic) * g.kernelH + ki) * g.kernelW + kj
                    dx[xi] += gv * Double(ws[wi]); dw[wi] += gv * Double(xs[xi])
                } } }
            } }
        } }
        return (dx, dw)
    }

    static func batchNormTraining(_ x: Tensor, gamma: Tensor, beta: Tensor, eps: Double) -> [Double] {
        let (n, c) = (x.shape[0], x.shape[1]), hw = x.count / (n * c)
        let xs = x.scalars
        var out = [Double](repeating: 0, count: x.count)
        for ch in 0..<c {
            var s = 0.0, ss = 0.0
            for b in 0..<n { for i in 0..<hw { let v = Double(xs[(b * c + ch) * hw + i]); s += v; ss += v * v } }
            let m = s / Double(n * hw), variance = ss / Double(n * hw) - m * m
            for b in 0..<n { for i in 0..<hw {
                let k = (b * c + ch) * hw + i
                out[k] = (Double(xs[k]) - m) / (variance + eps).squareRoot() * Double(gamma.scalars[ch]) + Double(beta.scalars[ch])
            } }
        }
        return out
    }

    static func pool(_ x: Tensor, kernel: Int, stride: Int, padding: Int, max isMax: Bool) -> [Double] {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + 2 * padding - kernel) / stride + 1, ow = (w + 2 * padding - kernel) / stride + 1
        let xs = x.scalars
        var out = [Double](repeating: 0, count: n * c * oh * ow)
        for p in 0..<(n * c) { for i in 0..<oh { for j in 0..<ow {
            var best = -Double.infinity, s = 0.0
            for ki in 0..<kernel { for kj in 0..<kernel {
                let r = i * stride - padding + ki, col = j * stride - padding + kj
                guard r >= 0 && r < h && col >= 0 && col < w else { continue }
                let v = Double(xs[(p * h + r) * w + col]); best = Swift.max(best, v); s += v
            } }
            out[(p * oh + i) * ow + j] = isMax ? best : s / Double(kernel * kernel)
        } } }
        return out
    }

    static func matmul(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { var s = 0.0; for t in 0..<k { s += Double(a[i * k + t]) * Double(b[t * n + j]) }; out[i * n + j] = s } }
        return out
    }
}

extension Tensor {
    convenience init(doubles: [Double], shape: [Int]) { self.init(doubles.map { Float($0) }, shape: shape) }
}
