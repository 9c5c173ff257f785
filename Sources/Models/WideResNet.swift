import Engine
import NN

/// The pre-activation block of the reference Wide ResNet: BN → ReLU → 3×3 conv → BN → ReLU → 3×3
/// conv, plus the identity or a 1×1 `convShortcut` applied to the pre-activated input.
public final class WideBasicBlock: Module, UnaryLayer {
    public let bn1: BatchNorm2d, conv1: Conv2d, bn2: BatchNorm2d, conv2: Conv2d
    public let convShortcut: Conv2d?

    public init(_ inPlanes: Int, _ outPlanes: Int, stride: Int) {
        bn1 = BatchNorm2d(inPlanes)
        conv1 = Conv2d(inPlanes, outPlanes, kernelSize: 3, stride: stride, padding: 1, bias: false)
        bn2 = BatchNorm2d(outPlanes)
        conv2 = Conv2d(outPlanes, outPlanes, kernelSize: 3, padding: 1, bias: false)
        convShortcut = inPlanes == outPlanes ? nil : Conv2d(inPlanes, outPlanes, kernelSize: 1, stride: stride, bias: false)
        super.init()
    }

    public override func stateDictName(ofChild property: String) -> String { property == "convShortcut" ? property : super.stateDictName(ofChild: property) }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let activated = bn1(x, fusedReLU: true)
        let out = conv2(bn2(conv1(activated), fusedReLU: true))
        // With equal widths the shortcut is the raw input; otherwise the projection of the activated input.
        return (convShortcut.map { $0(activated) } ?? x) + out
    }
}

/// A stage of blocks, named `blockN.layer.i` as in the reference code.
public final class WideStage: Module, UnaryLayer {
    public let layer: Sequential
    public init(blocks: Int, _ inPlanes: Int, _ outPlanes: Int, stride: Int) {
        layer = Sequential((0..<blocks).map { WideBasicBlock($0 == 0 ? inPlanes : outPlanes, outPlanes, stride: $0 == 0 ? stride : 1) })
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor { layer(x) }
}

/// The reference Wide ResNets `wrn_D_W` (depth D = 6n+4, widen factor W): a 3×3 stem to 16 channels,
/// three stages of n pre-activation blocks (16W, 32W, 64W), BN → ReLU, global pooling, linear.
/// Features: stem, stage 1, stage 2, the activated stage 3 (BN → ReLU), pooled vector.
public final class WideResNet: Module, FeatureClassifier {
    public let conv1: Conv2d
    public let block1: WideStage, block2: WideStage, block3: WideStage
    public let bn1: BatchNorm2d
    public let fc: Linear

    public init(depth: Int, widen: Int, classes: Int) {
        precondition((depth - 4) % 6 == 0, "Wide ResNet depth must be 6n+4, got \(depth)")
        let n = (depth - 4) / 6
        let widths = [16, 16 * widen, 32 * widen, 64 * widen]
        conv1 = Conv2d(3, widths[0], kernelSize: 3, padding: 1, bias: false)
        block1 = WideStage(blocks: n, widths[0], widths[1], stride: 1)
        block2 = WideStage(blocks: n, widths[1], widths[2], stride: 2)
        block3 = WideStage(blocks: n, widths[2], widths[3], stride: 2)
        bn1 = BatchNorm2d(widths[3])
        fc = Linear(widths[3], classes)
        super.init()
        // Reference initialisation: kaiming-normal (fan-out) convolutions, BN at (1, 0), zero linear bias.
        var updates = kaimingNormalConvolutionWeights()
        updates["fc.bias"] = Tensor.zeros([classes])
        update(parameters: updates)
    }

    public func features(_ x: Tensor) -> (features: [Tensor], logits: Tensor) {
        precondition(x.rank == 4 && x.shape[1] == 3, "Wide ResNet: input must be [N, 3, H, W], got \(x.shape)")
        let f0 = conv1(x)
        let f1 = block1(f0), f2 = block2(f1)
        let f3 = bn1(block3(f2), fusedReLU: true)
        let pooled = f3.adaptiveAvgPool2d((1, 1)).flattened()
        return ([f0, f1, f2, f3, pooled], fc(pooled))
    }

    public func classify(penultimate f: Tensor) -> Tensor { fc(f.adaptiveAvgPool2d((1, 1)).flattened()) }
}
