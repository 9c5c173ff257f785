import Foundation

/// Which convolutions run as one small matrix product per image and group
/// (`Tensor.runGroupedPointwise`) instead of oneDNN's kernels: grouped 1×1 convolutions with stride
/// 1 and no padding (ShuffleNet's) over maps of at least 8×8. oneDNN runs those in a four-channel
/// blocked layout that neither batch norm nor the next convolution reads, so every pass paid reorders
/// around the kernel; in plain NCHW each image's group is a contiguous [channels, H·W] matrix. On
/// 4×4 maps the products are too thin (16 columns) and oneDNN's kernels are faster.
public enum GroupedPointwisePolicy {
    /// Default on; `MMKD_GROUPED_GEMM=0` turns it off (such convolutions then run in oneDNN).
    nonisolated(unsafe) public static var isEnabled = ProcessInfo.processInfo.environment["MMKD_GROUPED_GEMM"] != "0"
    /// The fewest positions per map (H·W) for which the products are chosen.
    public static let minimumPositions = 64

    /// True when `g` runs as per-group products here.
    package static func computes(_ g: ConvGeometry) -> Bool {
        isEnabled && g.groups > 1 && g.inChannels / g.groups > 1 && g.kernelH == 1 && g.kernelW == 1
            && g.strideH == 1 && g.strideW == 1 && g.padH == 0 && g.padW == 0 && g.dilationH == 1 && g.dilationW == 1
            && g.height * g.width >= minimumPositions
    }
}

extension Tensor {
    /// One pass of a grouped 1×1 convolution (`GroupedPointwisePolicy`) in plain NCHW, inputs and
    /// result as `runConvolution`'s. With c and k the input and output channels per group and P = H·W:
    /// forward y[n,g] (k×P) = w[g] (k×c) · x[n,g] (c×P) (+ bias, ReLU); backward data
    /// gx[n,g] = w[g]ᵀ · gy[n,g]; backward weights gw[g] = Σ_n gy[n,g] · x[n,g]ᵀ, summed over the
    /// images in order within each job, so the result does not depend on the number of threads.
    static func runGroupedPointwise(_ g: ConvGeometry, _ pass: ConvolutionKernels.Pass, _ inputs: [Tensor], relu: Bool) -> (TensorStorage, DNNLFormat) {
        let (n, groups, p) = (g.batch, g.groups, g.height * g.width)
        let (c, k) = (g.inChannels / groups, g.outChannels / groups)
        let a = SendablePointer(inputs[0].pointer), b = SendablePointer(inputs[1].pointer)
        switch pass {
        case .forward, .backwardData:
            let forward = pass == .forward
            // forward: a = x [n, G·c, P], b = w [G·k, c]; backward data: a = gy [n, G·k, P], b = w.
            let (rows, inner) = forward ? (k, c) : (c, k)
            let shape = forward ? g.outputShape : g.inputShape
            let out = TensorStorage(count: Shape.count(shape))
            let o = SendablePointer(out.pointer)
            let bias = forward && inputs.count == 3 ? SendablePointer(inputs[2].pointer) : nil
            Parallel.chunks(n * groups, grain: 1) { jobs in
                for job in jobs {
                    let (image, group) = job.quotientAndRemainder(dividingBy: groups)
                    let target = o.pointer + (image * groups + group) * rows * p
                    GEMM.multiply(b.pointer + group * k * c, a.pointer + (image * groups + group) * inner * p, target,
                                  m: rows, n: p, k: inner, transposeA: !forward, transposeB: false)
                    guard bias != nil || relu else { continue }
                    for row in 0..<rows {
                        let shift = bias.map { $0.pointer[group * rows + row] } ?? 0
                        let line = target + row * p
                        for i in 0..<p {
                            let v = line[i] + shift
                            line[i] = relu ? Swift.max(v, 0) : v
                        }
                    }
                }
            }
            return (out, DNNLFormat.plain(shape))
        case .backwardWeights:
            // a = x [n, G·c, P], b = gy [n, G·k, P]; gw [G·k, c]: jobs are blocks of a group's rows.
            let out = TensorStorage(count: Shape.count(g.weightShape))
            let o = SendablePointer(out.pointer)
            let block = 16, blocks = (k + block - 1) / block
            Parallel.chunks(groups * blocks, grain: 1) { jobs in
                for job in jobs {
                    let (group, index) = job.quotientAndRemainder(dividingBy: blocks)
                    let first = index * block, count = Swift.min(block, k - first)
                    for image in 0..<n {
                        GEMM.multiply(b.pointer + ((image * groups + group) * k + first) * p, a.pointer + (image * groups + group) * c * p,
                                      o.pointer + (group * k + first) * c, m: count, n: c, k: p,
                                      transposeA: false, transposeB: true, accumulate: image > 0)
                    }
                }
            }
            return (out, DNNLFormat.plain(g.weightShape))
        }
    }
}
