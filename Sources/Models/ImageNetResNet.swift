import Engine
import NN

/// The bottleneck block of the ImageNet ResNets: 1×1 → BN → ReLU → 3×3 (strided; `groups` groups)
/// → BN → ReLU → 1×1 (4× `planes`) → BN, plus the identity or a 1×1 conv + BN `downsample`, then
/// ReLU. The inner width is torchvision's `planes · widthPerGroup / 64 · groups` (ResNeXt-50 32×4d:
/// 32 groups of 4; Wide ResNet-50-2: width per group 128).
public final class Bottleneck: Module, UnaryLayer {
    public let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d, conv3: Conv2d, bn3: BatchNorm2d
    public let downsample: Sequential?
    public static let expansion = 4

    public init(_ inPlanes: Int, _ planes: Int, stride: Int, groups: Int = 1, widthPerGroup: Int = 64) {
        let out = planes * Bottleneck.expansion
        let width = planes * widthPerGroup / 64 * groups
        conv1 = Conv2d(inPlanes, width, kernelSize: 1, bias: false); bn1 = BatchNorm2d(width)
        conv2 = Conv2d(width, width, kernelSize: 3, stride: stride, padding: 1, groups: groups, bias: false); bn2 = BatchNorm2d(width)
        conv3 = Conv2d(width, out, kernelSize: 1, bias: false); bn3 = BatchNorm2d(out)
        downsample = stride != 1 || inPlanes != out
            ? Sequential(Conv2d(inPlanes, out, kernelSize: 1, stride: stride, bias: false), BatchNorm2d(out)) : nil
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let out = conv3(conv2(conv1(x, normalizedBy: bn1, relu: true), normalizedBy: bn2, relu: true), normalizedBy: bn3)
        return (out + (downsample?(x) ?? x)).relu()
    }
}

/// The ImageNet-style ResNets (`ResNet18/34/50/101`, 224×224 inputs): 7×7 stride-2 stem → BN → ReLU
/// → 3×3 stride-2 max pool, four stages (64/128/256/512 planes, basic or bottleneck blocks), global
/// pooling, linear. Features: the pooled stem, each stage, the pooled vector.
///
/// `widen` multiplies every width (stem included); `groups` and `widthPerGroup` shape the bottleneck's
/// inner convolution (`resnext50_32x4d`, `wrn_50_2`). The reference code's "wide" ResNet18×2 /
/// ResNet34×2 / ResNet34×4 silently build the plain networks; here `ResNet18x2`, `ResNet34x2` and
/// `ResNet34x4` are really widened (2× or 4× channels in the stem and every stage).
public final class ImageNetResNet: Module, FeatureClassifier {
    public let conv1: Conv2d, bn1: BatchNorm2d
    public let layer1: [UnaryLayerBox], layer2: [UnaryLayerBox], layer3: [UnaryLayerBox], layer4: [UnaryLayerBox]
    public let fc: Linear

    public static let depths: [Int: (blocks: [Int], bottleneck: Bool)] = [
        18: ([2, 2, 2, 2], false), 34: ([3, 4, 6, 3], false), 50: ([3, 4, 6, 3], true), 101: ([3, 4, 23, 3], true),
    ]

    public init(depth: Int, classes: Int, widen: Int = 1, groups: Int = 1, widthPerGroup: Int = 64) {
        guard let (blocks, bottleneck) = ImageNetResNet.depths[depth] else { preconditionFailure("ImageNet ResNet depth must be 18, 34, 50 or 101, got \(depth)") }
        let stem = 64 * widen
        conv1 = Conv2d(3, stem, kernelSize: 7, stride: 2, padding: 3, bias: false)
        bn1 = BatchNorm2d(stem)
        var inPlanes = stem
        func stage(_ planes: Int, _ n: Int, _ stride: Int) -> [UnaryLayerBox] {
            (0..<n).map { i in
                let s = i == 0 ? stride : 1
                let block: any UnaryLayer = bottleneck ? Bottleneck(inPlanes, planes, stride: s, groups: groups, widthPerGroup: widthPerGroup)
                    : BasicBlock(inPlanes, planes, stride: s)
                inPlanes = bottleneck ? planes * Bottleneck.expansion : planes
                return UnaryLayerBox(block)
            }
        }
        layer1 = stage(64 * widen, blocks[0], 1); layer2 = stage(128 * widen, blocks[1], 2)
        layer3 = stage(256 * widen, blocks[2], 2); layer4 = stage(512 * widen, blocks[3], 2)
        fc = Linear(inPlanes, classes)
        super.init()
        update(parameters: kaimingNormalConvolutionWeights())
    }

    public func features(_ x: Tensor) -> (features: [Tensor], logits: Tensor) {
        precondition(x.rank == 4 && x.shape[1] == 3, "ImageNet ResNet: input must be [N, 3, H, W], got \(x.shape)")
        let f0 = conv1(x, normalizedBy: bn1, relu: true).maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        let f1 = layer1.reduce(f0) { $1($0) }, f2 = layer2.reduce(f1) { $1($0) }
        let f3 = layer3.reduce(f2) { $1($0) }, f4 = layer4.reduce(f3) { $1($0) }
        let pooled = f4.adaptiveAvgPool2d((1, 1)).flattened()
        return ([f0, f1, f2, f3, f4, pooled], fc(pooled))
    }

    public func classify(penultimate f: Tensor) -> Tensor { fc(f.adaptiveAvgPool2d((1, 1)).flattened()) }
}

/// Holds a block of either kind under its own state-dict names (it adds no level of its own).
public final class UnaryLayerBox: Module, UnaryLayer {
    public let layer: any UnaryLayer
    public init(_ layer: any UnaryLayer) { self.layer = layer; super.init() }
    public override var namedChildren: [(String, Module)] { layer.namedChildren }
    public func callAsFunction(_ x: Tensor) -> Tensor { layer(x) }
}
