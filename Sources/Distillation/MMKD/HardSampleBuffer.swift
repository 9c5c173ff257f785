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
    /// Per sample, each teacher's cached outputs (`TeacherOutputs.cachedParts`, teacher by teacher).
    private(set) var cached: [[Tensor]] = []
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
    /// random slots. Each teacher's outputs for the batch are cached per sample.
    public mutating func offer(images batch: Tensor, labels batchLabels: [Int], studentLogits: Tensor, teacherOutputs: [TeacherOutputs] = []) {
        offer(images: batch, labels: batchLabels, studentLogits: studentLogits, cachedBatches: teacherOutputs.flatMap(\.cachedParts))
    }

    /// `offer` with the cached tensors batched (first dimension = batch), teacher by teacher.
    mutating func offer(images batch: Tensor, labels batchLabels: [Int], studentLogits: Tensor, cachedBatches teacherOutputs: [Tensor]) {
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

    /// A batch of `size` distinct stored samples: images `[size, C, H, W]`, labels, and each
    /// teacher's cached outputs re-batched.
    public mutating func sample(_ size: Int) -> (images: Tensor, labels: [Int], teacherOutputs: [TeacherOutputs]) {
        precondition(size > 0 && size <= count, "HardSampleBuffer.sample: \(size) samples requested, \(count) stored")
        let slots = drawDistinct(size)
        let batch = Tensor.stack(slots.map { images[$0] })
        let outputs = (0..<(cached.first?.count ?? 0)).map { k in Tensor.stack(slots.map { cached[$0][k] }) }
        let teachers = stride(from: 0, to: outputs.count, by: TeacherOutputs.cachedPartCount).map {
            TeacherOutputs(cachedParts: outputs[$0..<($0 + TeacherOutputs.cachedPartCount)])
        }
        return (batch, slots.map { labels[$0] }, teachers)
    }
}

extension HardSampleBuffer {
    /// The contents as named tensors for a resume file: `PREFIX.images` `[N, C, H, W]`,
    /// `PREFIX.labels`, `PREFIX.cached.J` (the J-th cached tensor of every sample, batched); nothing
    /// when empty. The generator is saved separately.
    public func savedTensors(prefix: String) -> [(String, Tensor)] {
        guard count > 0 else { return [] }
        var tensors = [(prefix + ".images", Tensor.stack(images)), (prefix + ".labels", Tensor(labels.map(Float.init), shape: [count]))]
        for j in 0..<(cached.first?.count ?? 0) { tensors.append((prefix + ".cached.\(j)", Tensor.stack(cached.map { $0[j] }))) }
        return tensors
    }

    /// Replaces the contents with those `savedTensors(prefix:)` wrote for `teachers` teachers (an
    /// empty buffer when there are none). The generator is left as it is.
    public mutating func restore(from tensors: [String: Tensor], prefix: String, teachers: Int) {
        images = []; labels = []; cached = []
        guard let batch = tensors[prefix + ".images"], let stored = tensors[prefix + ".labels"] else { return }
        let labels = stored.scalars.map { Int($0) }
        precondition(batch.shape[0] == labels.count && (labels.count <= capacity || officialFill),
                     "HardSampleBuffer.restore: \(batch.shape[0]) images, \(labels.count) labels, capacity \(capacity)")
        let outputs = (0..<(teachers * TeacherOutputs.cachedPartCount)).compactMap { tensors[prefix + ".cached.\($0)"] }
        offer(images: batch, labels: labels, studentLogits: Tensor.zeros([labels.count, 1]), cachedBatches: outputs)
    }
}
