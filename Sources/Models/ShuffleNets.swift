import Engine
import NN

extension Tensor {
    /// Channel shuffle of `groups` groups: [N, g·c, H, W] → view [N, g, c, H, W] → swap g and c.
    /// One group is the identity (this tensor itself, as PyTorch's view of it).
    public func channelShuffled(groups: Int) -> Tensor {
        precondition(rank == 4 && shape[1] % groups == 0, "channel shuffle: \(shape[1]) channels do not split into \(groups) groups")
        if groups == 1 { return self }
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        // An export records the shuffle as ONNX has it (reshape, transpose, reshape).
        if GraphTrace.isRecording { return reshaped([n, groups, c / groups, h, w]).permuted([0, 2, 1, 3, 4]).reshaped([n, c, h, w]) }
        // Output channel k·g + m is input channel m·(c/g) + k, gathered in the input's layout.
        let perGroup = c / groups
        return channelsGathered((0..<c).map { j in (j % groups) * perGroup + j / groups })
    }
}

/// ShuffleNet (v1) bottleneck: grouped 1×1 → BN → ReLU → shuffle → depthwise 3×3 → BN → ReLU →
/// grouped 1×1 → BN; added to the input, or concatenated with its 3×3 average pool when strided.
public final class ShuffleBottleneck: Module, UnaryLayer {
    public let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d, conv3: Conv2d, bn3: BatchNorm2d
    let stride: Int, firstGroups: Int

    public init(_ inPlanes: Int, _ outPlanes: Int, stride: Int, groups: Int) {
        let mid = outPlanes / 4
        firstGroups = inPlanes == 24 ? 1 : groups
        conv1 = Conv2d(inPlanes, mid, kernelSize: 1, groups: firstGroups, bias: false)
        bn1 = BatchNorm2d(mid)
        conv2 = Conv2d(mid, mid, kernelSize: 3, stride: stride, padding: 1, groups: mid, bias: false)
        bn2 = BatchNorm2d(mid)
        conv3 = Conv2d(mid, outPlanes, kernelSize: 1, groups: groups, bias: false)
        bn3 = BatchNorm2d(outPlanes)
        self.stride = stride
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var out = conv1(x, normalizedBy: bn1, relu: true).channelShuffled(groups: firstGroups)
        out = conv3(conv2(out, normalizedBy: bn2, relu: true), normalizedBy: bn3)
        if stride == 2 { return Tensor.concat([out, x.avgPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1))], axis: 1).relu() }
        return (out + x).relu()
    }
}

/// The reference CIFAR ShuffleNet v1 (`ShuffleV1`: widths 240/480/960, 4/8/4 blocks, 3 groups).
public final class ShuffleNetV1: Module, FeatureClassifier {
    public let conv1: Conv2d, bn1: BatchNorm2d
    public let layer1: Sequential, layer2: Sequential, layer3: Sequential
    public let linear: Linear

    public init(classes: Int, widths: [Int] = [240, 480, 960], blocks: [Int] = [4, 8, 4], groups: Int = 3) {
        conv1 = Conv2d(3, 24, kernelSize: 1, bias: false)
        bn1 = BatchNorm2d(24)
        var inPlanes = 24
        func stage(_ out: Int, _ n: Int) -> Sequential {
            Sequential((0..<n).map { i in
                defer { inPlanes = out }
                return ShuffleBottleneck(inPlanes, out - (i == 0 ? inPlanes : 0), stride: i == 0 ? 2 : 1, groups: groups)
            })
        }
        layer1 = stage(widths[0], blocks[0]); layer2 = stage(widths[1], blocks[1]); layer3 = stage(widths[2], blocks[2])
        linear = Linear(widths[2], classes)
        super.init()
    }

    public func features(_ x: Tensor) -> (features: [Tensor], logits: Tensor) {
        precondition(x.rank == 4 && x.shape[1] == 3, "ShuffleV1: input must be [N, 3, H, W], got \(x.shape)")
        let f0 = conv1(x, normalizedBy: bn1, relu: true)
        let f1 = layer1(f0), f2 = layer2(f1), f3 = layer3(f2)
        let pooled = f3.adaptiveAvgPool2d((1, 1)).flattened()
        return ([f0, f1, f2, f3, pooled], linear(pooled))
    }

    public func classify(penultimate f: Tensor) -> Tensor { linear(f.adaptiveAvgPool2d((1, 1)).flattened()) }
}

/// ShuffleNet v2 unit: the channels split in half; one half passes, the other goes 1×1 → BN → ReLU →
/// depthwise 3×3 → BN → 1×1 → BN → ReLU; concatenated and shuffled in 2 groups.
public final class ShuffleV2Block: Module, UnaryLayer {
    public let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d, conv3: Conv2d, bn3: BatchNorm2d

    public init(_ channels: Int) {
        let c = channels / 2
        conv1 = Conv2d(c, c, kernelSize: 1, bias: false); bn1 = BatchNorm2d(c)
        conv2 = Conv2d(c, c, kernelSize: 3, padding: 1, groups: c, bias: false); bn2 = BatchNorm2d(c)
        conv3 = Conv2d(c, c, kernelSize: 1, bias: false); bn3 = BatchNorm2d(c)
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let c = x.shape[1] / 2
        let (x1, x2) = (x.slice(axis: 1, 0..<c), x.slice(axis: 1, c..<x.shape[1]))
        let out = conv3(conv2(conv1(x2, normalizedBy: bn1, relu: true), normalizedBy: bn2), normalizedBy: bn3, relu: true)
        return Tensor.concat([x1, out], axis: 1).channelShuffled(groups: 2)
    }
}

/// ShuffleNet v2 down-sampling unit: two strided branches (depthwise 3×3 → BN → 1×1 → BN → ReLU, and
/// 1×1 → BN → ReLU → depthwise 3×3 → BN → 1×1 → BN → ReLU), concatenated and shuffled.
public final class ShuffleV2DownBlock: Module, UnaryLayer {
    public let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d
    public let conv3: Conv2d, bn3: BatchNorm2d, conv4: Conv2d, bn4: BatchNorm2d, conv5: Conv2d, bn5: BatchNorm2d

    public init(_ inChannels: Int, _ outChannels: Int) {
        let mid = outChannels / 2
        conv1 = Conv2d(inChannels, inChannels, kernelSize: 3, stride: 2, padding: 1, groups: inChannels, bias: false); bn1 = BatchNorm2d(inChannels)
        conv2 = Conv2d(inChannels, mid, kernelSize: 1, bias: false); bn2 = BatchNorm2d(mid)
        conv3 = Conv2d(inChannels, mid, kernelSize: 1, bias: false); bn3 = BatchNorm2d(mid)
        conv4 = Conv2d(mid, mid, kernelSize: 3, stride: 2, padding: 1, groups: mid, bias: false); bn4 = BatchNorm2d(mid)
        conv5 = Conv2d(mid, mid, kernelSize: 1, bias: false); bn5 = BatchNorm2d(mid)
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let left = conv2(conv1(x, normalizedBy: bn1), normalizedBy: bn2, relu: true)
        let right = conv5(conv4(conv3(x, normalizedBy: bn3, relu: true), normalizedBy: bn4), normalizedBy: bn5, relu: true)
        return Tensor.concat([left, right], axis: 1).channelShuffled(groups: 2)
    }
}

/// The reference CIFAR ShuffleNet v2 (`ShuffleV2`: widths 116/232/464, 3/7/3 units, 1024-channel
/// final 1×1). Features: stem, stages 1 and 2, the 1024-channel map, the pooled vector.
public final class ShuffleNetV2: Module, FeatureClassifier {
    public let conv1: Conv2d, bn1: BatchNorm2d
    public let layer1: Sequential, layer2: Sequential, layer3: Sequential
    public let conv2: Conv2d, bn2: BatchNorm2d
    public let linear: Linear

    public init(classes: Int, widths: [Int] = [116, 232, 464, 1024], blocks: [Int] = [3, 7, 3]) {
        conv1 = Conv2d(3, 24, kernelSize: 1, bias: false)
        bn1 = BatchNorm2d(24)
        var inChannels = 24
        func stage(_ out: Int, _ n: Int) -> Sequential {
            defer { inChannels = out }
            return Sequential([ShuffleV2DownBlock(inChannels, out)] + (0..<n).map { _ in ShuffleV2Block(out) })
        }
        layer1 = stage(widths[0], blocks[0]); layer2 = stage(widths[1], blocks[1]); layer3 = stage(widths[2], blocks[2])
        conv2 = Conv2d(widths[2], widths[3], kernelSize: 1, bias: false)
        bn2 = BatchNorm2d(widths[3])
        linear = Linear(widths[3], classes)
        super.init()
    }

    public func features(_ x: Tensor) -> (features: [Tensor], logits: Tensor) {
        precondition(x.rank == 4 && x.shape[1] == 3, "ShuffleV2: input must be [N, 3, H, W], got \(x.shape)")
        let f0 = conv1(x, normalizedBy: bn1, relu: true)
        let f1 = layer1(f0), f2 = layer2(f1)
        let f3 = conv2(layer3(f2), normalizedBy: bn2, relu: true)
        let pooled = f3.adaptiveAvgPool2d((1, 1)).flattened()
        return ([f0, f1, f2, f3, pooled], linear(pooled))
    }

    public func classify(penultimate f: Tensor) -> Tensor { linear(f.adaptiveAvgPool2d((1, 1)).flattened()) }
}
