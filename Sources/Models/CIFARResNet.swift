import Engine
import NN

/// The basic residual block of the CIFAR ResNets: 3×3 conv → BN → ReLU → 3×3 conv → BN, plus the
/// identity or a 1×1 conv + BN `downsample`, then ReLU.
public final class BasicBlock: Module, UnaryLayer {
    public let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d
    public let downsample: Sequential?

    public init(_ inPlanes: Int, _ planes: Int, stride: Int) {
        conv1 = Conv2d(inPlanes, planes, kernelSize: 3, stride: stride, padding: 1, bias: false)
        bn1 = BatchNorm2d(planes)
        conv2 = Conv2d(planes, planes, kernelSize: 3, padding: 1, bias: false)
        bn2 = BatchNorm2d(planes)
        downsample = stride != 1 || inPlanes != planes
            ? Sequential(Conv2d(inPlanes, planes, kernelSize: 1, stride: stride, bias: false), BatchNorm2d(planes)) : nil
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let out = conv2(conv1(x, normalizedBy: bn1, relu: true), normalizedBy: bn2)
        return (out + (downsample?(x) ?? x)).relu()
    }
}

/// The CIFAR ResNets of the reference zoo (RepDistiller): `resnet8/14/20/32/44/56/110` (16/16/32/64
/// channels) and `resnet8x4/20x4/32x4` (32/64/128/256), with (depth − 2)/6 basic blocks per stage,
/// 32×32 inputs, global average pooling and one linear classifier.
public final class CIFARResNet: Module, FeatureClassifier {
    public let conv1: Conv2d, bn1: BatchNorm2d
    public let layer1: [BasicBlock], layer2: [BasicBlock], layer3: [BasicBlock]
    public let fc: Linear

    public init(depth: Int, widths: [Int], classes: Int) {
        precondition((depth - 2) % 6 == 0, "CIFAR ResNet depth must be 6n+2, got \(depth)")
        precondition(widths.count == 4, "CIFAR ResNet needs 4 widths (stem and three stages), got \(widths)")
        let n = (depth - 2) / 6
        conv1 = Conv2d(3, widths[0], kernelSize: 3, padding: 1, bias: false)
        bn1 = BatchNorm2d(widths[0])
        var inPlanes = widths[0]
        func stage(_ planes: Int, _ stride: Int) -> [BasicBlock] {
            (0..<n).map { i in
                defer { inPlanes = planes }
                return BasicBlock(inPlanes, planes, stride: i == 0 ? stride : 1)
            }
        }
        layer1 = stage(widths[1], 1)
        layer2 = stage(widths[2], 2)
        layer3 = stage(widths[3], 2)
        fc = Linear(widths[3], classes)
        super.init()
        // Reference initialisation: kaiming-normal (fan-out) convolutions, BN at (1, 0).
        update(parameters: kaimingNormalConvolutionWeights())
    }

    public func features(_ x: Tensor) -> (features: [Tensor], logits: Tensor) {
        precondition(x.rank == 4 && x.shape[1] == 3, "CIFAR ResNet: input must be [N, 3, H, W], got \(x.shape)")
        let f0 = conv1(x, normalizedBy: bn1, relu: true)
        let f1 = layer1.reduce(f0) { $1($0) }
        let f2 = layer2.reduce(f1) { $1($0) }
        let f3 = layer3.reduce(f2) { $1($0) }
        let pooled = f3.adaptiveAvgPool2d((1, 1)).flattened()
        return ([f0, f1, f2, f3, pooled], fc(pooled))
    }

    public func classify(penultimate f: Tensor) -> Tensor { fc(f.adaptiveAvgPool2d((1, 1)).flattened()) }
}
