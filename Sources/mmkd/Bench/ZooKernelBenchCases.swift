import Engine
import Models
import NN

/// The kernel cases of whole architectures (`mmkd bench kernels --arch A`): the network's
/// inference and training step at batch 64 (`KernelBenchCases.inference`, `.trainStep`), every distinct
/// convolution the architectures run at batch 64, found by tracing one forward pass, each in its
/// three passes (plain NCHW in and out, conversions to oneDNN's layouts timed, as in
/// `KernelBenchCases`) and in the second-order path of MMKD's meta step; and every channel shuffle,
/// forward and backward, on activations in the layout a convolution leaves them. A geometry two architectures share is one case, named after the first.
enum ZooKernelBenchCases {
    static let batch = KernelBenchCases.batch

    /// The architectures of Table I's pairs (teachers and students).
    static let tableOne = ["vgg13", "vgg8", "resnet32x4", "MobileNetV2", "wrn_40_2", "wrn_40_1", "resnet20x4", "ShuffleV1"]

    /// A channel shuffle of `groups` groups on [batch, channels, hw, hw].
    struct Shuffle: Hashable { let channels: Int, hw: Int, groups: Int }

    /// The convolutions (at batch 64, in order of first use, each once) and channel shuffles of one
    /// forward pass of `arch`.
    static func layers(of arch: String) throws -> (convolutions: [ConvGeometry], shuffles: [Shuffle]) {
        let model = try ModelZoo.make(arch, classes: 100)
        model.eval()
        var rng = RandomGenerator(seed: 3)
        let x = Tensor.randomNormal([1, 3, 32, 32], generator: &rng)
        let trace = withoutGrad { GraphTrace.record(input: x) { model.features($0) }.trace }
        var convolutions: [ConvGeometry] = [], shuffles: [Shuffle] = []
        for node in trace.nodes {
            switch node.op {
            case .conv2d(let stride, let padding, let dilation, let groups, _):
                let (i, w) = (node.inputs[0].shape, node.inputs[1].shape)
                let g = ConvGeometry(batch: batch, inChannels: i[1], height: i[2], width: i[3], outChannels: w[0], kernel: (w[2], w[3]),
                                     stride: (stride[0], stride[1]), padding: (padding[0], padding[1]),
                                     dilation: (dilation[0], dilation[1]), groups: groups)
                if !convolutions.contains(g) { convolutions.append(g) }
            case .permute(let order) where order == [0, 2, 1, 3, 4]:
                // channelShuffled: [n, g, c/g, h, w] with the group axes swapped.
                let s = node.inputs[0].shape
                let shuffle = Shuffle(channels: s[1] * s[2], hw: s[3], groups: s[1])
                if !shuffles.contains(shuffle) { shuffles.append(shuffle) }
            default: break
            }
        }
        return (convolutions, shuffles)
    }

    /// A geometry's short name: kernel, channels, input size, stride and groups when not 1
    /// ("dw" for depthwise).
    static func label(_ g: ConvGeometry) -> String {
        let kind = g.groups == 1 ? "" : g.groups == g.inChannels && g.groups == g.outChannels ? " dw" : " g\(g.groups)"
        return "\(g.kernelH)x\(g.kernelW)\(kind) \(g.inChannels)>\(g.outChannels) \(g.height)x\(g.width)\(g.strideH == 1 ? "" : " s\(g.strideH)")"
    }

    static func cases(_ archs: [String]) throws -> [BenchCase] {
        var cases: [BenchCase] = [], seen: Set<ConvGeometry> = [], seenShuffles: Set<Shuffle> = []
        for arch in archs {
            // The whole network first: a frozen teacher's inference and a student's training step.
            cases += [KernelBenchCases.inference(arch), KernelBenchCases.trainStep(arch)]
            let (convolutions, shuffles) = try layers(of: arch)
            for g in convolutions where seen.insert(g).inserted {
                let name = "\(arch) \(label(g))"
                cases += KernelBenchCases.passCases(g, name: name)
                // The meta step's path: a weight gradient built with its graph, then differentiated
                // again (with respect to the input and the weight), as the look-ahead's replay does.
                let label = "conv 2nd-order \(name)"
                cases.append(BenchCase(name: label, spec: KernelBenchCases.spec(g).merging(["kind": "conv_second_order", "name": label]) { $1 }, flops: 5 * g.flops) {
                    let (x0, w0, _) = KernelBenchCases.tensors(g)
                    var rng = RandomGenerator(seed: 11)
                    let v = Tensor.randomNormal(g.weightShape, generator: &rng)
                    let x = x0.requiringGrad(), w = w0.requiringGrad()
                    return {
                        let y = x.conv2d(w, stride: (g.strideH, g.strideW), padding: (g.padH, g.padW), groups: g.groups)
                        let gw = gradients(of: (y * y).sum() * 0.5, wrt: [w], createGraph: true)[0]
                        _ = gradients(of: (gw * v).sum(), wrt: [x, w])
                    }
                })
            }
            for s in shuffles where seenShuffles.insert(s).inserted {
                let shape = [batch, s.channels, s.hw, s.hw]
                let spec: [String: Any] = ["channels": s.channels, "hw": s.hw, "groups": s.groups, "batch": batch]
                let label = "\(arch) \(s.channels)ch \(s.hw)x\(s.hw) g\(s.groups)"
                cases.append(BenchCase(name: "shuffle fwd \(label)", spec: spec.merging(["kind": "shuffle_fwd", "name": "shuffle fwd \(label)"]) { $1 },
                                       flops: nil) {
                    var rng = RandomGenerator(seed: 1)
                    let x = KernelBenchCases.asConvolutionOutput(Tensor.randomNormal(shape, generator: &rng))
                    return { _ = withoutGrad { x.channelShuffled(groups: s.groups) } }
                })
                cases.append(BenchCase(name: "shuffle bwd \(label)", spec: spec.merging(["kind": "shuffle_bwd", "name": "shuffle bwd \(label)"]) { $1 },
                                       flops: nil) {
                    var rng = RandomGenerator(seed: 1)
                    let x = KernelBenchCases.asConvolutionOutput(Tensor.randomNormal(shape, generator: &rng)).requiringGrad()
                    let gy = KernelBenchCases.asConvolutionOutput(Tensor.randomNormal(shape, generator: &rng))
                    let y = x.channelShuffled(groups: s.groups)
                    return { _ = gradients(of: y, seed: gy, wrt: [x]) }
                })
            }
        }
        return cases
    }
}
