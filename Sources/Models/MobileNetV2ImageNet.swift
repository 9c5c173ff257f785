import Engine
import NN

/// torchvision's MobileNetV2 for 224×224 inputs (`MobileNetV2_Imagenet`): `features.0` a stride-2
/// 3×3 conv → BN → ReLU6, 17 inverted residuals (expansion 6, the first 1) in `features.1…17`, a 1×1
/// conv to 1280 channels → BN → ReLU6 (`features.18`), global pooling and `classifier.1`. Features
/// follow the reference's splits [0, 1, 4, 7, 14, 18]: the stem, `features.1…3`, `4…6`, `7…13`,
/// `14…17`, then the pooled vector. The classifier is dropout (p = 0.2, `classifier.0`) → linear.
public final class MobileNetV2ImageNet: Module, FeatureClassifier {
    /// Conv → BN → ReLU6 under the names `0` and `1`.
    final class ConvBNReLU6: Module, UnaryLayer {
        let conv: Conv2d, bn: BatchNorm2d
        init(_ conv: Conv2d, _ channels: Int) { self.conv = conv; bn = BatchNorm2d(channels); super.init() }
        override var namedChildren: [(String, Module)] { [("0", conv), ("1", bn)] }
        func callAsFunction(_ x: Tensor) -> Tensor { bn(conv(x)).clamped(min: 0, max: 6) }
    }

    /// torchvision's inverted residual: [1×1 expansion] → 3×3 depthwise → 1×1 projection → BN, named
    /// `conv.0…3` (`conv.0…2` without the expansion).
    final class Block: Module, UnaryLayer {
        let expand: ConvBNReLU6?, depthwise: ConvBNReLU6, project: Conv2d, projectBN: BatchNorm2d
        let residual: Bool

        init(_ inChannels: Int, _ outChannels: Int, stride: Int, expansion: Int) {
            let hidden = inChannels * expansion
            expand = expansion == 1 ? nil : ConvBNReLU6(Conv2d(inChannels, hidden, kernelSize: 1, bias: false), hidden)
            depthwise = ConvBNReLU6(Conv2d(hidden, hidden, kernelSize: 3, stride: stride, padding: 1, groups: hidden, bias: false), hidden)
            project = Conv2d(hidden, outChannels, kernelSize: 1, bias: false)
            projectBN = BatchNorm2d(outChannels)
            residual = stride == 1 && inChannels == outChannels
            super.init()
        }

        override var namedChildren: [(String, Module)] {
            let first: [(String, Module)] = expand.map { [("conv.0", $0)] } ?? []
            let k = first.count
            return first + [("conv.\(k)", depthwise), ("conv.\(k + 1)", project), ("conv.\(k + 2)", projectBN)]
        }

        func callAsFunction(_ x: Tensor) -> Tensor {
            let out = projectBN(project(depthwise(expand.map { $0(x) } ?? x)))
            return residual ? x + out : out
        }
    }

    let layers: [any UnaryLayer & Module]
    public let classifier: Linear
    let dropout = Dropout(p: 0.2)
    static let split = [0, 1, 4, 7, 14, 18]

    public init(classes: Int) {
        let settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        var layers: [any UnaryLayer & Module] = [ConvBNReLU6(Conv2d(3, 32, kernelSize: 3, stride: 2, padding: 1, bias: false), 32)]
        var channels = 32
        for (t, c, n, s) in settings {
            for i in 0..<n {
                layers.append(Block(channels, c, stride: i == 0 ? s : 1, expansion: t))
                channels = c
            }
        }
        layers.append(ConvBNReLU6(Conv2d(channels, 1280, kernelSize: 1, bias: false), 1280))
        self.layers = layers
        classifier = Linear(1280, classes)
        super.init()
    }

    public override var namedChildren: [(String, Module)] {
        layers.enumerated().map { ("features.\($0.offset)", $0.element) } + [("classifier.0", dropout), ("classifier.1", classifier)]
    }

    public func features(_ x: Tensor) -> (features: [Tensor], logits: Tensor) {
        precondition(x.rank == 4 && x.shape[1] == 3, "MobileNetV2: input must be [N, 3, H, W], got \(x.shape)")
        var maps: [Tensor] = [], h = x
        for (from, to) in zip(Self.split, Self.split.dropFirst()) {
            h = layers[from..<to].reduce(h) { $1($0) }
            maps.append(h)
        }
        let pooled = layers[Self.split.last!](h).mean(axes: [2, 3])
        return (maps + [pooled], classifier(dropout(pooled)))
    }

    public func classify(penultimate f: Tensor) -> Tensor { classifier(dropout(layers[Self.split.last!](f).mean(axes: [2, 3]))) }
}
