import Engine
import NN

/// The reference code's VGG for 224×224 inputs (`vgg8_imagenet`, `vgg11_imagenet`,
/// `vgg13_imagenet`: torchvision's VGG with batch norm, configurations "S", "A", "B"): 3×3
/// convolutions with bias → BN → ReLU, 2×2 max pools, adaptive pooling to 7×7, and the classifier
/// Linear(25088, 4096) → ReLU → Linear(4096, 4096) → ReLU → Linear(4096, classes), stored as
/// `features.N` / `classifier.0|3|6` as there.
///
/// Features follow the reference's `split`: the outputs of `features[split[i]..<split[i+1]]`, the
/// rest, then the flattened 7×7 map. Its splits were written for layers without batch norm, so they
/// fall between a BN and its ReLU; that ReLU runs in place in PyTorch and so rectifies the recorded
/// map too, which is reproduced here. The classifier is torchvision's: linear → ReLU → dropout
/// (p = 0.5) → linear → ReLU → dropout → linear (`classifier.0…6`).
public final class ImageNetVGG: Module, FeatureClassifier {
    enum Layer { case conv(Conv2d, BatchNorm2d), relu, pool }

    let layers: [Layer]
    let split: [Int]
    public let fc1: Linear, fc2: Linear, fc3: Linear
    let dropout1 = Dropout(p: 0.5), dropout2 = Dropout(p: 0.5)

    /// Layer widths with `0` for a max pool, and split points, per configuration.
    public static let configurations: [String: (widths: [Int], split: [Int])] = [
        "vgg8_imagenet": ([64, 0, 128, 0, 256, 0, 512, 0, 512, 0], [0, 2, 4, 6, 8]),
        "vgg11_imagenet": ([64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0], [0, 2, 4, 7, 10]),
        "vgg13_imagenet": ([64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0], [0, 3, 6, 9, 12]),
    ]

    public init(_ configuration: (widths: [Int], split: [Int]), classes: Int) {
        var layers: [Layer] = [], channels = 3
        for w in configuration.widths {
            if w == 0 { layers.append(.pool); continue }
            // One conv + BN entry stands for the two modules `features.i` and `features.i+1`.
            layers.append(.conv(Conv2d(channels, w, kernelSize: 3, padding: 1), BatchNorm2d(w)))
            layers.append(.relu)
            channels = w
        }
        self.layers = layers
        split = configuration.split
        fc1 = Linear(512 * 7 * 7, 4096); fc2 = Linear(4096, 4096); fc3 = Linear(4096, classes)
        super.init()
    }

    /// The modules as PyTorch numbers them: conv, BN, ReLU, max pool each count one.
    var modules: [(index: Int, layer: Layer)] {
        var out: [(Int, Layer)] = [], i = 0
        for layer in layers {
            out.append((i, layer))
            if case .conv = layer { i += 2 } else { i += 1 }
        }
        return out
    }

    public override var namedChildren: [(String, Module)] {
        var children: [(String, Module)] = []
        for (i, layer) in modules { if case let .conv(conv, bn) = layer { children += [("features.\(i)", conv), ("features.\(i + 1)", bn)] } }
        return children + [("classifier.0", fc1), ("classifier.2", dropout1), ("classifier.3", fc2), ("classifier.5", dropout2), ("classifier.6", fc3)]
    }

    /// Runs PyTorch's modules `from..<to` (a conv counts as two: conv at its index, BN at the next).
    func run(_ x: Tensor, from: Int, to: Int) -> Tensor {
        var x = x
        for (i, layer) in modules {
            switch layer {
            case let .conv(conv, bn):
                if i >= from && i < to { x = conv(x) }
                if i + 1 >= from && i + 1 < to { x = bn(x) }
            case .relu where i >= from && i < to: x = x.relu()
            case .pool where i >= from && i < to: x = x.maxPool2d(kernel: (2, 2), stride: (2, 2))
            default: break
            }
        }
        return x
    }

    var moduleCount: Int { modules.last.map { if case .conv = $0.layer { return $0.index + 2 } else { return $0.index + 1 } } ?? 0 }

    /// Whether PyTorch's module `i` is a ReLU (in place: it also rectifies the map recorded before it).
    func isReLU(_ i: Int) -> Bool { modules.contains { $0.index == i && { if case .relu = $0 { return true } else { return false } }($0.layer) } }

    public func features(_ x: Tensor) -> (features: [Tensor], logits: Tensor) {
        precondition(x.rank == 4 && x.shape[1] == 3, "VGG: input must be [N, 3, H, W], got \(x.shape)")
        var maps: [Tensor] = [], h = x
        for (from, to) in zip(split, split.dropFirst()) {
            h = run(h, from: from, to: to)
            maps.append(h)
        }
        h = run(h, from: split.last!, to: moduleCount)
        maps.append(h)
        // The in-place ReLU right after a split point rectifies the map recorded there.
        for (k, point) in split.dropFirst().enumerated() where isReLU(point) { maps[k] = maps[k].relu() }
        let pooled = h.adaptiveAvgPool2d((7, 7)).flattened()
        return (maps + [pooled], head(pooled))
    }

    func head(_ pooled: Tensor) -> Tensor { fc3(dropout2(fc2(dropout1(fc1(pooled).relu())).relu())) }

    public func classify(penultimate f: Tensor) -> Tensor { head(f.adaptiveAvgPool2d((7, 7)).flattened()) }
}
