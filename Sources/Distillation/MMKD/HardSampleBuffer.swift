import Engine

/// MMKD's buffer of hard samples (DESIGN.md §3, step 8). Until it is full, every regular batch is
/// appended (the last one truncated to the capacity); once full, the batch's misclassified samples
/// (arg-max of the student's logits ≠ label) overwrite distinct, randomly chosen slots. Sampling
/// draws distinct slots. Each sample may carry cached per-teacher outputs (teachers are frozen, so
/// their outputs for a stored sample never change), which saves the teacher forwards of the meta step.
///
/// With `officialFill` (`--compat official`) the buffer behaves as the official code's: whole batches
/// are appended and it counts as full only when the count lands exactly on the capacity, so with a
/// capacity that is not a multiple of the batch size it never fills and keeps every regular batch.
public struct HardSampleBuffer {
    public let capacity: Int
    public let officialFill: Bool
    /// Stored samples, each `[C, H, W]`.
    public private(set) var images: [Tensor] = []
    public private(set) var labels: [Int] = []
    /// Per sample, cached teacher tensors (e.g. each teacher's logits and penultimate features).
    public private(set) var cached: [[Tensor]] = []
    public var generator: RandomGenerator

    public init(capacity: Int = 256, seed: UInt64, officialFill: Bool = false) {
        precondition(capacity > 0, "HardSampleBuffer: capacity must be positive")
        self.capacity = capacity
        self.officialFill = officialFill
        generator = RandomGenerator(seed: seed)
    }

    public var count: Int { labels.count }
    public var isFull: Bool { count == capacity }

    /// Offers a regular batch: appended while filling, else its misclassified samples replace
    /// random slots. `teacherOutputs` are batched tensors (first dimension = batch) cached per sample.
    public mutating func offer(images batch: Tensor, labels batchLabels: [Int], studentLogits: Tensor, teacherOutputs: [Tensor] = []) {
        precondition(batch.shape[0] == batchLabels.count && studentLogits.shape[0] == batchLabels.count,
                     "HardSampleBuffer.offer: \(batch.shape[0]) images, \(batchLabels.count) labels, \(studentLogits.shape[0]) logit rows")
        let n = batchLabels.count
        let perSample = (0..<n).map { i in teacherOutputs.map { $0.slice(axis: 0, i..<(i + 1)).reshaped(Array($0.shape.dropFirst())).detached() } }
        let samples = (0..<n).map { batch.slice(axis: 0, $0..<($0 + 1)).reshaped(Array(batch.shape.dropFirst())).detached() }
        if !isFull {
            let take = officialFill ? n : min(n, capacity - count)
            images += samples.prefix(take); labels += batchLabels.prefix(take); cached += perSample.prefix(take)
            return
        }
        let predictions = studentLogits.argmax(axis: 1)
        let wrong = (0..<n).filter { predictions[$0] != batchLabels[$0] }
        let slots = drawDistinct(wrong.count)
        for (i, slot) in zip(wrong, slots) {
            images[slot] = samples[i]; labels[slot] = batchLabels[i]; cached[slot] = perSample[i]
        }
    }

    /// `k` distinct slots (all of them, shuffled, when k ≥ count).
    mutating func drawDistinct(_ k: Int) -> [Int] {
        var slots = Array(0..<count)
        // Partial Fisher–Yates: the first k positions become a uniform k-subset.
        for i in 0..<min(k, count) {
            let j = i + Int(generator.next() % UInt64(count - i))
            slots.swapAt(i, j)
        }
        return Array(slots.prefix(min(k, count)))
    }

    /// A batch of `size` distinct stored samples: images `[size, C, H, W]`, labels, and the cached
    /// teacher outputs re-batched (one tensor per cached output).
    public mutating func sample(_ size: Int) -> (images: Tensor, labels: [Int], teacherOutputs: [Tensor]) {
        precondition(size > 0 && size <= count, "HardSampleBuffer.sample: \(size) samples requested, \(count) stored")
        let slots = drawDistinct(size)
        let batch = Tensor.stack(slots.map { images[$0] })
        let outputs = (0..<(cached.first?.count ?? 0)).map { k in Tensor.stack(slots.map { cached[$0][k] }) }
        return (batch, slots.map { labels[$0] }, outputs)
    }
}

extension HardSampleBuffer {
    /// Replaces the contents with stored samples (resuming a run): images `[N, C, H, W]`, labels,
    /// and each cached output batched `[N, …]`. The generator is left as it is.
    public mutating func restore(images batch: Tensor, labels stored: [Int], cached outputs: [Tensor]) {
        precondition(batch.shape[0] == stored.count && (stored.count <= capacity || officialFill), "HardSampleBuffer.restore: \(batch.shape[0]) images, \(stored.count) labels, capacity \(capacity)")
        images = []; labels = []; cached = []
        offer(images: batch, labels: stored, studentLogits: Tensor.zeros([stored.count, 1]), teacherOutputs: outputs)
    }
}
