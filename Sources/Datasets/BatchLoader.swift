import Engine
import Foundation

/// One batch: images `[B, C, H, W]`, labels, and the data set indices they came from.
public struct Batch: @unchecked Sendable {
    public let images: Tensor
    public let labels: [Int]
    public let indices: [Int]

    public init(images: Tensor, labels: [Int], indices: [Int]) { self.images = images; self.labels = labels; self.indices = indices }
}

/// Decodes and augments batches on background threads while the caller computes.
///
/// Reproducible: the order of an epoch is a shuffle seeded by (seed, epoch), and each sample's
/// augmentation is seeded by (seed, epoch, index), so the same seed gives the same batches whatever
/// the number of threads. `batches(epoch:startingAt:)` resumes mid-epoch.
public final class BatchLoader: @unchecked Sendable {
    public let dataset: any ImageDataset
    public let batchSize: Int
    public let shuffle: Bool
    public let dropLast: Bool
    public let pipeline: ImagePipeline
    public let seed: UInt64
    public let workers: Int
    public let prefetch: Int

    /// In a data-parallel run, which equal part of every batch this process loads (`part` of
    /// `parts`): the batches are those of one process, cut into `parts` consecutive slices.
    public let share: (part: Int, parts: Int)

    /// `share`: the part of every batch this process takes (see `share`); the whole batch by default.
    public init(dataset: any ImageDataset, batchSize: Int, shuffle: Bool, dropLast: Bool, pipeline: ImagePipeline,
                seed: UInt64, workers: Int = 2, prefetch: Int = 4, share: (part: Int, parts: Int) = (0, 1)) {
        precondition(share.parts >= 1 && (0..<share.parts).contains(share.part), "BatchLoader: part \(share.part) of \(share.parts)")
        self.share = share
        precondition(batchSize > 0, "BatchLoader: batch size must be positive")
        self.dataset = dataset; self.batchSize = batchSize; self.shuffle = shuffle; self.dropLast = dropLast
        self.pipeline = pipeline; self.seed = seed; self.workers = max(1, workers); self.prefetch = max(1, prefetch)
    }

    /// Batches per epoch.
    public var batchCount: Int { dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize }

    /// The sample order of `epoch`.
    public func order(epoch: Int) -> [Int] {
        var indices = Array(0..<dataset.count)
        if shuffle {
            var g = RandomGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch))
            indices.shuffle(using: &g)
        }
        return indices
    }

    /// Builds batch `number` of `epoch` on the calling thread.
    public func makeBatch(epoch: Int, number: Int, order: [Int]) throws -> Batch {
        let whole = order[(number * batchSize)..<min(order.count, (number + 1) * batchSize)]
        let part = (whole.count * share.part / share.parts) ..< (whole.count * (share.part + 1) / share.parts)
        let indices = Array(whole.dropFirst(part.lowerBound).prefix(part.count))
        var storage: TensorStorage? = nil
        var shape: [Int] = []
        for (i, index) in indices.enumerated() {
            let image = try dataset.image(at: index)
            let (w, h) = pipeline.outputSize(width: image.width, height: image.height)
            if storage == nil {
                shape = [indices.count, pipeline.channels, h, w]
                storage = TensorStorage(count: Shape.count(shape))
            }
            guard shape[2] == h && shape[3] == w else {
                throw DataError.mismatch(path: "sample \(index)", reason: "image is \(image.width)×\(image.height) after padding \(w)×\(h), the batch is \(shape[3])×\(shape[2]); resize or crop images to one size")
            }
            var g = RandomGenerator(seed: seed ^ (UInt64(epoch) << 40) ^ UInt64(index) &* 0xD6E8_FEB8_6659_FD93)
            pipeline.apply(image, generator: &g, into: storage!.pointer + i * pipeline.channels * h * w)
        }
        return Batch(images: Tensor(storage: storage!, shape: shape), labels: indices.map(dataset.label(at:)), indices: indices)
    }

    /// The batches of `epoch` from batch `start` on (every `stride`-th of them), prefetched by
    /// background threads.
    public func batches(epoch: Int, startingAt start: Int = 0, stride: Int = 1) -> BatchIterator {
        BatchIterator(loader: self, epoch: epoch, numbers: Array(Swift.stride(from: start, to: batchCount, by: max(1, stride))))
    }
}

/// Iterates an epoch's batches in order; worker threads build the next ones ahead of time. Errors of
/// decoding are rethrown by `next()`. Dropping the iterator stops its workers.
public final class BatchIterator: @unchecked Sendable {
    /// What the iterator and its workers share (the workers do not keep the iterator alive).
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        var nextToHand: Int
        var ready: [Int: Result<Batch, Error>] = [:]
        var stopped = false
        init(start: Int) { nextToHand = start }
    }

    private let state: State
    private let end: Int

    /// Builds the batches `numbers` of `epoch`, in that order (positions 0, 1, … of the list).
    init(loader: BatchLoader, epoch: Int, numbers: [Int]) {
        let order = loader.order(epoch: epoch)
        let end = numbers.count
        let state = State(start: 0)
        self.state = state
        self.end = end
        for w in 0..<loader.workers {
            let thread = Thread {
                var position = w
                while position < end {
                    state.condition.lock()
                    while !state.stopped && position >= state.nextToHand + loader.prefetch { state.condition.wait() }
                    let quit = state.stopped
                    state.condition.unlock()
                    if quit { return }
                    let result = Result { try loader.makeBatch(epoch: epoch, number: numbers[position], order: order) }
                    state.condition.lock()
                    state.ready[position] = result
                    state.condition.broadcast()
                    state.condition.unlock()
                    position += loader.workers
                }
            }
            thread.name = "mmkd-loader-\(w)"
            thread.start()
        }
    }

    deinit { stop() }

    /// The next batch, or nil at the end of the epoch.
    public func next() throws -> Batch? {
        state.condition.lock()
        defer { state.condition.unlock() }
        guard state.nextToHand < end else { return nil }
        while state.ready[state.nextToHand] == nil { state.condition.wait() }
        let result = state.ready.removeValue(forKey: state.nextToHand)!
        state.nextToHand += 1
        state.condition.broadcast()
        return try result.get()
    }

    /// Stops the workers.
    public func stop() {
        state.condition.lock()
        state.stopped = true
        state.condition.broadcast()
        state.condition.unlock()
    }
}
