import Engine
import NN

/// Convolution → BN → ReLU stored under PyTorch's `nn.Sequential` names `0` (conv) and `1` (BN),
/// computed with the fused BN + ReLU.
public final class ConvBNReLU: Module, UnaryLayer {
    public let conv: Conv2d, bn: BatchNorm2d
    public init(_ conv: Conv2d, _ channels: Int) { self.conv = conv; bn = BatchNorm2d(channels); super.init() }
    public override var namedChildren: [(String, Module)] { [("0", conv), ("1", bn)] }
    public func callAsFunction(_ x: Tensor) -> Tensor { conv(x, normalizedBy: bn, relu: true) }
}

/// MobileNetV2's inverted residual: 1×1 expansion → BN → ReLU → 3×3 depthwise → BN → ReLU → 1×1
/// projection → BN (named `conv.0` … `conv.7` as the reference's Sequential), with an identity
/// shortcut when stride 1 keeps the width.
public final class InvertedResidual: Module, UnaryLayer {
    public let expand: ConvBNReLU, depthwise: ConvBNReLU, project: Conv2d, projectBN: BatchNorm2d
    public let residual: Bool

    public init(_ inChannels: Int, _ outChannels: Int, stride: Int, expansion: Int) {
        let hidden = inChannels * expansion
        expand = ConvBNReLU(Conv2d(inChannels, hidden, kernelSize: 1, bias: false), hidden)
        depthwise = ConvBNReLU(Conv2d(hidden, hidden, kernelSize: 3, stride: stride, padding: 1, groups: hidden, bias: false), hidden)
        project = Conv2d(hidden, outChannels, kernelSize: 1, bias: false)
        projectBN = BatchNorm2d(outChannels)
        residual = stride == 1 && inChannels == outChannels
        super.init()
    }

    public override var namedChildren: [(String, Module)] {
        [("conv.0", expand.conv), ("conv.1", expand.bn), ("conv.3", depthwise.conv), ("conv.4", depthwise.bn),
         ("conv.6", project), ("conv.7", projectBN)]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let out = project(depthwise(expand(x)), normalizedBy: projectBN)
        return residual ? x + out : out
    }
}

/// The reference CIFAR MobileNetV2 (`mobile_half`: expansion 6, width 0.5): a stride-2 3×3 stem,
/// seven stages of inverted residuals, a 1×1 conv to 1280 channels, global pooling and a linear
/// classifier. Features: stem, stages 2, 3 and 5, the 1280-channel map, the pooled vector.
public final class MobileNetV2: Module, FeatureClassifier {
    public let conv1: ConvBNReLU
    public let blocks: [Sequential]
    public let conv2: ConvBNReLU
    public let classifier: Sequential

    public init(classes: Int, expansion: Int = 6, width: Double = 0.5) {
        let settings = [(1, 16, 1, 1), (expansion, 24, 2, 1), (expansion, 32, 3, 2), (expansion, 64, 4, 2),
                        (expansion, 96, 3, 1), (expansion, 160, 3, 2), (expansion, 320, 1, 1)]
        var channels = Int(32 * width)
        conv1 = ConvBNReLU(Conv2d(3, channels, kernelSize: 3, stride: 2, padding: 1, bias: false), channels)
        var stages: [Sequential] = []
        for (t, c, n, s) in settings {
            let out = Int(Double(c) * width)
            stages.append(Sequential((0..<n).map { i in
                defer { channels = out }
                return InvertedResidual(i == 0 ? channels : out, out, stride: i == 0 ? s : 1, expansion: t)
            }))
        }
        blocks = stages
        let last = width > 1 ? Int(1280 * width) : 1280
        conv2 = ConvBNReLU(Conv2d(channels, last, kernelSize: 1, bias: false), last)
        classifier = Sequential(Linear(last, classes))
        super.init()
        // Reference initialisation: convs N(0, 2/(k·k·out)), BN (1, 0), linear N(0, 0.01) with zero bias.
        var updates: [String: Tensor] = [:]
        for (name, p) in namedParameters where p.rank == 4 {
            updates[name] = Tensor.randomNormal(p.shape, std: (2 / Float(p.shape[0] * p.shape[2] * p.shape[3])).squareRoot(), generator: &Initialization.generator)
        }
        updates["classifier.0.weight"] = Tensor.randomNormal([classes, last], std: 0.01, generator: &Initialization.generator)
        updates["classifier.0.bias"] = Tensor.zeros([classes])
        update(parameters: updates)
    }

    public func features(_ x: Tensor) -> (features: [Tensor], logits: Tensor) {
        precondition(x.rank == 4 && x.shape[1] == 3, "MobileNetV2: input must be [N, 3, H, W], got \(x.shape)")
        let f0 = conv1(x)
        let f1 = blocks[1](blocks[0](f0))
        let f2 = blocks[2](f1)
        let f3 = blocks[4](blocks[3](f2))
        let f4 = conv2(blocks[6](blocks[5](f3)))
        let pooled = f4.adaptiveAvgPool2d((1, 1)).flattened()
        return ([f0, f1, f2, f3, f4, pooled], classifier(pooled))
    }

    public func classify(penultimate f: Tensor) -> Tensor { classifier(f.adaptiveAvgPool2d((1, 1)).flattened()) }
}
