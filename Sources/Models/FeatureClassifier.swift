import Engine
import NN

/// A classifier that also returns its intermediate feature maps: the stem output, each stage's
/// output and the pooled vector, in that order (index −2 is the penultimate spatial map that MMKD
/// and CA-MKD match), as the reference zoo's `forward(x, is_feat=True)` does.
public protocol FeatureClassifier: Module {
    func features(_ x: Tensor) -> (features: [Tensor], logits: Tensor)
}

extension FeatureClassifier {
    /// Logits only.
    public func callAsFunction(_ x: Tensor) -> Tensor { features(x).logits }
}
