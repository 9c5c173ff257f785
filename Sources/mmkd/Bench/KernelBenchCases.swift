import Engine
import Models
import NN

/// The kernel suite (each kernel takes and returns plain NCHW buffers, as PyTorch's ops do, so
/// conversions to oneDNN's layouts are inside the timing): convolution layer shapes of resnet8x4 / resnet32x4, a MobileNetV2 depthwise
/// convolution and the main resnet8 shapes at batch 64, batch norm, and one resnet8 training step.
enum KernelBenchCases {
    static let batch = 64

    /// (name, in, out, spatial, kernel, stride, groups)
    static let convShapes: [(String, Int, Int, Int, Int, Int, Int)] = [
        ("resnet8x4.stem 3>32 32x32", 3, 32, 32, 3, 1, 1),
        ("resnet8x4.l1 32>64 32x32", 32, 64, 32, 3, 1, 1),
        ("resnet32x4.l1 64>64 32x32", 64, 64, 32, 3, 1, 1),
        ("resnet8x4.l1.ds 1x1 32>64", 32, 64, 32, 1, 1, 1),
        ("resnet8x4.l2 64>128 s2", 64, 128, 32, 3, 2, 1),
        ("resnet32x4.l2 128>128 16x16", 128, 128, 16, 3, 1, 1),
        ("resnet8x4.l3 128>256 s2", 128, 256, 16, 3, 2, 1),
        ("resnet32x4.l3 256>256 8x8", 256, 256, 8, 3, 1, 1),
        ("mobilenetv2.dw 96 16x16", 96, 96, 16, 3, 1, 96),
        ("resnet8.stem 3>16 32x32", 3, 16, 32, 3, 1, 1),
        ("resnet8.l1 16>16 32x32", 16, 16, 32, 3, 1, 1),
        ("resnet8.l2 16>32 s2", 16, 32, 32, 3, 2, 1),
        ("resnet8.l3 64>64 8x8", 64, 64, 8, 3, 1, 1),
    ]

    static var all: [BenchCase] {
        var cases: [BenchCase] = []
        for (name, cin, cout, hw, k, s, groups) in convShapes {
            cases += passCases(ConvGeometry(batch: batch, inChannels: cin, height: hw, width: hw, outChannels: cout,
                                            kernel: (k, k), stride: (s, s), padding: (k / 2, k / 2), groups: groups), name: name)
        }
        // Frozen-teacher 3×3 convolutions on activations already in oneDNN's layout, with bias and
        // ReLU: oneDNN's direct kernel against Winograd F(2×2, 3×3) and F(4×4, 3×3) (PyTorch: F.conv2d).
        for (name, c, hw) in [("resnet20.l3", 64, 8), ("resnet32x4.l1", 64, 32), ("resnet32x4.l2", 128, 16), ("resnet32x4.l3", 256, 8), ("vgg13.l3", 256, 8), ("vgg13.l4", 512, 4), ("vgg13.l5", 512, 2)] {
            let g = ConvGeometry(batch: batch, inChannels: c, height: hw, width: hw, outChannels: c, kernel: (3, 3), padding: (1, 1))
            let spec: [String: Any] = ["in": c, "out": c, "hw": hw, "kernel": 3, "stride": 1, "padding": 1, "groups": 1, "batch": batch, "kind": "conv_fwd"]
            for (kernel, outputTile) in [("direct", 0), ("winograd", 2), ("winograd4", 4)] {
                let label = "conv infer \(kernel) \(name) \(c)>\(c) \(hw)x\(hw)"
                cases.append(BenchCase(name: label, spec: spec.merging(["name": label]) { $1 }, flops: g.flops) {
                    let (x, w, _) = tensors(g)
                    let blocked = asConvolutionOutput(x)
                    let bias = Tensor.zeros([c])
                    guard outputTile > 0 else {
                        return {
                            let saved = WinogradPolicy.isEnabled
                            WinogradPolicy.isEnabled = false
                            defer { WinogradPolicy.isEnabled = saved }
                            _ = withoutGrad { blocked.conv2d(w, bias: bias, padding: (1, 1), fusedReLU: true) }
                        }
                    }
                    let filters = WinogradFilters(w, outputTile: outputTile)
                    return { _ = blocked.winogradConvolution(filters, bias: bias, relu: true) }
                })
            }
        }
        // Training passes of 3×3 convolutions on blocked activations: oneDNN's direct kernels
        // against Winograd F(2×2, 3×3) (`WinogradPolicy`), at vgg8 / resnet8x4 / resnet32x4 shapes.
        for (name, cin, cout, hw) in [("resnet20.l3", 64, 64, 8), ("resnet32x4.l1", 64, 64, 32), ("vgg8.l1", 64, 128, 16), ("resnet32x4.l2", 128, 128, 16),
                                      ("vgg8.l2", 128, 256, 8), ("resnet32x4.l3", 256, 256, 8), ("vgg8.l3", 256, 512, 4),
                                      ("vgg8.l3b", 512, 512, 4)] {
            let g = ConvGeometry(batch: batch, inChannels: cin, height: hw, width: hw, outChannels: cout, kernel: (3, 3), padding: (1, 1))
            let spec: [String: Any] = ["in": cin, "out": cout, "hw": hw, "kernel": 3, "stride": 1, "padding": 1, "groups": 1, "batch": batch]
            for (pass, passName, kind) in [(ConvolutionKernels.Pass.forward, "fwd", "conv_fwd"), (.backwardData, "bwd-data", "conv_bwd_data"),
                                           (.backwardWeights, "bwd-weights", "conv_bwd_weights")] {
                for winograd in [false, true] {
                    let label = "conv train \(passName) \(winograd ? "winograd" : "direct") \(name) \(cin)>\(cout) \(hw)x\(hw)"
                    cases.append(BenchCase(name: label, spec: spec.merging(["name": label, "kind": kind]) { $1 }, flops: g.flops) {
                        let (x, w, gy) = tensors(g)
                        // Activations as a previous convolution leaves them (NCHW8c).
                        let blockedX = Tensor.convolutionPass(g, .backwardData, [Tensor.convolutionPass(g, .forward, [x, w]), w])
                        let blockedGy = Tensor.convolutionPass(g, .forward, [blockedX, w]) + gy
                        let inputs = [pass == .backwardData ? blockedGy : blockedX, pass == .backwardWeights ? blockedGy : w]
                        return {
                            let saved = (WinogradPolicy.isEnabled, WinogradPolicy.minimumChannels)
                            (WinogradPolicy.isEnabled, WinogradPolicy.minimumChannels) = (winograd, 8)
                            defer { (WinogradPolicy.isEnabled, WinogradPolicy.minimumChannels) = saved }
                            _ = Tensor.convolutionPass(g, pass, inputs)
                        }
                    })
                }
            }
        }
        for (c, hw) in [(64, 32), (256, 8)] {
            let shape = [batch, c, hw, hw]
            let spec: [String: Any] = ["channels": c, "hw": hw, "batch": batch]
            let label = "\(c)ch \(hw)x\(hw)"
            cases.append(BenchCase(name: "bn fwd \(label)", spec: spec.merging(["kind": "bn_fwd", "name": "bn fwd \(label)"]) { $1 }, flops: nil) {
                var rng = RandomGenerator(seed: 1)
                let x = Tensor.randomNormal(shape, generator: &rng), gamma = Tensor.ones([c]), beta = Tensor.zeros([c])
                return { _ = withoutGrad { x.batchNormTraining(weight: gamma, bias: beta) } }
            })
            cases.append(BenchCase(name: "bn bwd \(label)", spec: spec.merging(["kind": "bn_bwd", "name": "bn bwd \(label)"]) { $1 }, flops: nil) {
                var rng = RandomGenerator(seed: 1)
                let x = Tensor.randomNormal(shape, generator: &rng).requiringGrad()
                let gamma = Tensor.ones([c]).requiringGrad(), beta = Tensor.zeros([c]).requiringGrad()
                let y = x.batchNormTraining(weight: gamma, bias: beta).output
                let gy = Tensor.randomNormal(shape, generator: &rng)
                return { _ = gradients(of: y, seed: gy, wrt: [x, gamma, beta]) }
            })
        }
        cases.append(trainStep("resnet8"))
        cases.append(inference("resnet8"))
        cases.append(inference("resnet32x4"))
        return cases
    }

    /// The PyTorch comparator's description of a (square) convolution.
    static func spec(_ g: ConvGeometry) -> [String: Any] {
        precondition(g.kernelH == g.kernelW && g.strideH == g.strideW && g.padH == g.padW && g.height == g.width
                     && g.dilationH == 1 && g.dilationW == 1, "the PyTorch comparator's convolutions are square and undilated")
        return ["in": g.inChannels, "out": g.outChannels, "hw": g.height, "kernel": g.kernelH, "stride": g.strideH,
                "padding": g.padH, "groups": g.groups, "batch": g.batch]
    }

    /// The three passes of `g` on plain NCHW buffers ("conv fwd NAME", "conv bwd-data NAME",
    /// "conv bwd-weights NAME").
    static func passCases(_ g: ConvGeometry, name: String) -> [BenchCase] {
        [(ConvolutionKernels.Pass.forward, "fwd", "conv_fwd"), (.backwardData, "bwd-data", "conv_bwd_data"),
         (.backwardWeights, "bwd-weights", "conv_bwd_weights")].map { pass, passName, kind in
            let label = "conv \(passName) \(name)"
            return BenchCase(name: label, spec: spec(g).merging(["kind": kind, "name": label]) { $1 }, flops: g.flops) {
                let (x, w, gy) = tensors(g)
                let inputs = pass == .forward ? [x, w] : pass == .backwardData ? [gy, w] : [x, gy]
                let out = TensorStorage(count: Shape.count(pass == .forward ? g.outputShape : pass == .backwardData ? g.inputShape : g.weightShape))
                return { ConvolutionKernels.runPlain(g, pass, inputs.map(\.pointer) + [out.pointer]) }
            }
        }
    }

    /// `x`'s values in the layout a convolution leaves them (oneDNN's choice), through an identity 1×1 convolution.
    static func asConvolutionOutput(_ x: Tensor) -> Tensor {
        let c = x.shape[1]
        let identity = Tensor.make([c, c, 1, 1]) { p, count in p.initialize(repeating: 0, count: count); for i in 0..<c { p[i * c + i] = 1 } }
        return withoutGrad { x.conv2d(identity) }
    }

    static func tensors(_ g: ConvGeometry) -> (Tensor, Tensor, Tensor) {
        var rng = RandomGenerator(seed: 7)
        return (Tensor.randomNormal(g.inputShape, generator: &rng), Tensor.randomNormal(g.weightShape, std: 0.1, generator: &rng),
                Tensor.randomNormal(g.outputShape, generator: &rng))
    }

    /// An eval-mode forward without gradients (how frozen teachers run).
    static func inference(_ arch: String) -> BenchCase {
        BenchCase(name: "inference \(arch) b64", spec: ["kind": "inference", "arch": arch, "batch": batch, "classes": 100,
                                                       "name": "inference \(arch) b64"], flops: nil) {
            let model = try! ModelZoo.make(arch, classes: 100)
            model.eval()
            var rng = RandomGenerator(seed: 3)
            let x = Tensor.randomNormal([batch, 3, 32, 32], generator: &rng)
            return { _ = withoutGrad { model(x).scalars } }
        }
    }

    /// Forward, cross-entropy, backward and an SGD (momentum 0.9, Nesterov, weight decay 5e-4) step.
    static func trainStep(_ arch: String) -> BenchCase {
        BenchCase(name: "train step \(arch) b64", spec: ["kind": "train_step", "arch": arch, "batch": batch, "classes": 100,
                                                      "name": "train step \(arch) b64"], flops: nil) {
            let model = try! ModelZoo.make(arch, classes: 100)
            var rng = RandomGenerator(seed: 3)
            let x = Tensor.randomNormal([batch, 3, 32, 32], generator: &rng)
            let labels = (0..<batch).map { _ in Int(rng.next() % 100) }
            var sgd = OptimizerDriver(SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true))
            return { sgd.minimize(crossEntropy(model(x), labels: labels), of: model) }
        }
    }
}
