import Engine
import NN

/// A classifier that also returns its intermediate feature maps: the stem output, each stage's
/// output and the pooled vector, in that order (index −2 is the penultimate spatial map that MMKD
/// and CA-MKD match), as the reference zoo's `forward(x, is_feat=True)` does.
public protocol FeatureClassifier: Module {
    func features(_ x: Tensor) -> (features: [Tensor], logits: Tensor)
    /// The network's own head applied to a penultimate map (feature index −2) of the right channel
    /// count: `classify(penultimate: features(x).features[-2]) == features(x).logits`. CA-MKD feeds
    /// projected student maps through each teacher's head.
    func classify(penultimate: Tensor) -> Tensor
}

extension FeatureClassifier {
    /// Logits only.
    public func callAsFunction(_ x: Tensor) -> Tensor { features(x).logits }
}
