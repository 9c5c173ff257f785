import Engine
import NN

/// The reference CIFAR VGGs with batch norm (`vgg8/11/13/16/19`): five blocks of 3×3 conv (with bias)
/// → BN → ReLU, 2×2 max pooling between the first four
/// (the fourth only on 64×64 inputs), global average pooling and one linear classifier.
/// Features: the output of each block after its ReLU, then the pooled vector.
public final class VGG: Module, FeatureClassifier {
    public let block0: Sequential, block1: Sequential, block2: Sequential, block3: Sequential, block4: Sequential
    public let classifier: Linear

    public static let configurations: [String: [[Int]]] = [
        "vgg8": [[64], [128], [256], [512], [512]],
        "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
        "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
        "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
        "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
    ]

    public init(_ configuration: [[Int]], classes: Int) {
        precondition(configuration.count == 5, "VGG needs five blocks, got \(configuration.count)")
        var inChannels = 3
        func block(_ widths: [Int]) -> Sequential {
            var layers: [any UnaryLayer] = []
            for w in widths {
                layers += [Conv2d(inChannels, w, kernelSize: 3, padding: 1), BatchNorm2d(w), ReLU()]
                inChannels = w
            }
            // The reference applies the block's last ReLU outside the block; keeping it inside (a
            // ReLU has no state) lets training-mode BN fuse it.
            return Sequential(layers)
        }
        block0 = block(configuration[0]); block1 = block(configuration[1]); block2 = block(configuration[2])
        block3 = block(configuration[3]); block4 = block(configuration[4])
        classifier = Linear(inChannels, classes)
        super.init()
        // Reference initialisation: kaiming-normal (fan-out) convs with zero bias, BN (1, 0),
        // linear N(0, 0.01) with zero bias.
        var updates = kaimingNormalConvolutionWeights()
        for (name, p) in namedParameters where name.hasPrefix("block") && name.hasSuffix(".bias") && isConvBias(name) {
            updates[name] = Tensor.zeros(p.shape)
        }
        updates["classifier.weight"] = Tensor.randomNormal(classifier.weight.shape, std: 0.01, generator: &Initialization.generator)
        updates["classifier.bias"] = Tensor.zeros([classes])
        update(parameters: updates)
    }

    /// Convolution biases sit at even positions of a block (conv, BN, ReLU, conv, BN, …).
    private func isConvBias(_ name: String) -> Bool {
        let parts = name.split(separator: ".")
        return parts.count == 3 && (Int(parts[1]) ?? 1) % 3 == 0
    }

    public func features(_ x: Tensor) -> (features: [Tensor], logits: Tensor) {
        precondition(x.rank == 4 && x.shape[1] == 3, "VGG: input must be [N, 3, H, W], got \(x.shape)")
        let h = x.shape[2]
        let f0 = block0(x)
        let f1 = block1(f0.maxPool2d(kernel: (2, 2)))
        let f2 = block2(f1.maxPool2d(kernel: (2, 2)))
        let f3 = block3(f2.maxPool2d(kernel: (2, 2)))
        let f4 = block4(h == 64 ? f3.maxPool2d(kernel: (2, 2)) : f3)
        let pooled = f4.adaptiveAvgPool2d((1, 1)).flattened()
        return ([f0, f1, f2, f3, f4, pooled], classifier(pooled))
    }

    public func classify(penultimate f: Tensor) -> Tensor { classifier(f.adaptiveAvgPool2d((1, 1)).flattened()) }
}
