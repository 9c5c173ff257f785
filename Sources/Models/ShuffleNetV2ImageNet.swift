import Engine
import NN

/// A unit of torchvision's ShuffleNet v2: with stride 1 the channels split in half and one half goes
/// through `branch2`; with stride 2 both `branch1` (depthwise 3×3 → BN → 1×1 → BN → ReLU) and
/// `branch2` (1×1 → BN → ReLU → depthwise 3×3 → BN → 1×1 → BN → ReLU) see the whole input. The halves
/// are concatenated and shuffled in 2 groups.
public final class ShuffleV2Unit: Module, UnaryLayer {
    let b1dw: Conv2d?, b1bn1: BatchNorm2d?, b1pw: Conv2d?, b1bn2: BatchNorm2d?
    let b2pw1: Conv2d, b2bn1: BatchNorm2d, b2dw: Conv2d, b2bn2: BatchNorm2d, b2pw2: Conv2d, b2bn3: BatchNorm2d
    let stride: Int

    public init(_ inChannels: Int, _ outChannels: Int, stride: Int) {
        let half = outChannels / 2
        self.stride = stride
        if stride > 1 {
            b1dw = Conv2d(inChannels, inChannels, kernelSize: 3, stride: stride, padding: 1, groups: inChannels, bias: false)
            b1bn1 = BatchNorm2d(inChannels)
            b1pw = Conv2d(inChannels, half, kernelSize: 1, bias: false)
            b1bn2 = BatchNorm2d(half)
        } else { b1dw = nil; b1bn1 = nil; b1pw = nil; b1bn2 = nil }
        let branchIn = stride > 1 ? inChannels : half
        b2pw1 = Conv2d(branchIn, half, kernelSize: 1, bias: false); b2bn1 = BatchNorm2d(half)
        b2dw = Conv2d(half, half, kernelSize: 3, stride: stride, padding: 1, groups: half, bias: false); b2bn2 = BatchNorm2d(half)
        b2pw2 = Conv2d(half, half, kernelSize: 1, bias: false); b2bn3 = BatchNorm2d(half)
        super.init()
    }

    public override var namedChildren: [(String, Module)] {
        var children: [(String, Module)] = []
        if let b1dw, let b1bn1, let b1pw, let b1bn2 { children += [("branch1.0", b1dw), ("branch1.1", b1bn1), ("branch1.2", b1pw), ("branch1.3", b1bn2)] }
        return children + [("branch2.0", b2pw1), ("branch2.1", b2bn1), ("branch2.3", b2dw), ("branch2.4", b2bn2), ("branch2.5", b2pw2), ("branch2.6", b2bn3)]
    }

    func branch2(_ x: Tensor) -> Tensor {
        b2bn3(b2pw2(b2bn2(b2dw(b2bn1(b2pw1(x), fusedReLU: true)))), fusedReLU: true)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let out: Tensor
        if let b1dw, let b1bn1, let b1pw, let b1bn2 {
            out = Tensor.concat([b1bn2(b1pw(b1bn1(b1dw(x))), fusedReLU: true), branch2(x)], axis: 1)
        } else {
            let c = x.shape[1] / 2
            out = Tensor.concat([x.slice(axis: 1, 0..<c), branch2(x.slice(axis: 1, c..<x.shape[1]))], axis: 1)
        }
        return out.channelShuffled(groups: 2)
    }
}

/// torchvision's ShuffleNet v2 (`shufflenet_v2_x0_5`: stage widths 48/96/192, 1024-channel final
/// 1×1, 4/8/4 units) for 224×224 inputs. Features: the pooled stem, stages 2–4, the pooled vector.
public final class ShuffleNetV2ImageNet: Module, FeatureClassifier {
    public let conv1: ConvBNReLU
    public let stage2: Sequential, stage3: Sequential, stage4: Sequential
    public let conv5: ConvBNReLU
    public let fc: Linear

    public init(classes: Int, widths: [Int] = [24, 48, 96, 192, 1024], repeats: [Int] = [4, 8, 4]) {
        conv1 = ConvBNReLU(Conv2d(3, widths[0], kernelSize: 3, stride: 2, padding: 1, bias: false), widths[0])
        var inChannels = widths[0]
        func stage(_ out: Int, _ n: Int) -> Sequential {
            defer { inChannels = out }
            return Sequential((0..<n).map { ShuffleV2Unit($0 == 0 ? inChannels : out, out, stride: $0 == 0 ? 2 : 1) })
        }
        stage2 = stage(widths[1], repeats[0]); stage3 = stage(widths[2], repeats[1]); stage4 = stage(widths[3], repeats[2])
        conv5 = ConvBNReLU(Conv2d(widths[3], widths[4], kernelSize: 1, bias: false), widths[4])
        fc = Linear(widths[4], classes)
        super.init()
    }

    public func features(_ x: Tensor) -> (features: [Tensor], logits: Tensor) {
        precondition(x.rank == 4 && x.shape[1] == 3, "ShuffleNet v2: input must be [N, 3, H, W], got \(x.shape)")
        let f0 = conv1(x).maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        let f1 = stage2(f0), f2 = stage3(f1), f3 = stage4(f2)
        let pooled = conv5(f3).mean(axes: [2, 3])
        return ([f0, f1, f2, f3, pooled], fc(pooled))
    }

    public func classify(penultimate f: Tensor) -> Tensor { fc(conv5(f).mean(axes: [2, 3])) }
}
