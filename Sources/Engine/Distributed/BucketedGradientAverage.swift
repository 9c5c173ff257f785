import Foundation

extension Replicas {
    /// The largest bucket of `averagedGradients`, in floats: 1 MiB of values by default,
    /// `MMKD_GRADIENT_BUCKET_KB` to change it (a positive number of KiB; 0: one sum after the
    /// backward pass, no overlap). A gradient larger than a bucket is a bucket of its own.
    nonisolated(unsafe) public static var bucketCapacity: Int = {
        guard let text = ProcessInfo.processInfo.environment["MMKD_GRADIENT_BUCKET_KB"] else { return 1 << 18 }
        guard let kib = Int(text), kib >= 0, kib <= 1 << 30 else {
            FileHandle.standardError.write(Data("warning: MMKD_GRADIENT_BUCKET_KB=\(text) is not a number of KiB from 0 to 2^30; using 1024\n".utf8))
            return 1 << 18
        }
        return kib * 256
    }()

    /// The gradients of `loss` with respect to replicated `parameters`, averaged over the current
    /// group: `averaged(gradients(of:wrt:createGraph:retainGraph:))`, with the same values. A pass
    /// that is not recorded sums the gradients in buckets (`bucketCapacity`, filled from the last
    /// parameter to the first: the order a backward pass completes them) while the pass goes on,
    /// each bucket started as soon as its gradients are complete (PyTorch's DDP); a recorded pass
    /// records the average as differentiable ops. Without a group, the gradients themselves.
    public static func averagedGradients(of loss: Tensor, wrt parameters: [Tensor], createGraph: Bool = false,
                                         retainGraph: Bool = true) -> [Tensor] {
        guard let group = current, !createGraph, bucketCapacity > 0, !parameters.isEmpty else {
            return averaged(gradients(of: loss, wrt: parameters, createGraph: createGraph, retainGraph: retainGraph))
        }
        precondition(loss.count == 1, "averagedGradients(of:): loss must be a scalar, got shape \(loss.shape)")
        let average = BucketedGradientAverage(group: group, shapes: parameters.map(\.shape), capacity: bucketCapacity)
        _ = gradients(of: loss, seed: Tensor.ones(loss.shape), wrt: parameters, createGraph: false, retainGraph: retainGraph,
                      observer: average)
        return average.finish()
    }
}

/// The gradient average of one backward pass, in buckets summed over the group while the pass
/// goes on. Buckets are fixed before the pass (parameters from last to first, up to `capacity`
/// values each) and started strictly in that order, each once all its gradients are complete, so
/// every process starts the same sums in the same order. The average is each sum scaled by
/// 1/size, the same arithmetic as `Replicas.averaged`.
final class BucketedGradientAverage: GradientObserver {
    final class Bucket {
        var count = 0
        var remaining = 0
        var values: TensorStorage!
        var sum: (any StartedSum)?
    }

    let group: any ReplicaGroup
    let shapes: [[Int]]
    private var buckets: [Bucket] = []
    /// Input index → (bucket, offset of its values in the bucket).
    private var place: [(bucket: Int, offset: Int)]
    /// The first bucket not yet started, and the first started one not known to be complete.
    private var nextToStart = 0, oldestInFlight = 0

    init(group: any ReplicaGroup, shapes: [[Int]], capacity: Int) {
        self.group = group
        self.shapes = shapes
        place = Array(repeating: (0, 0), count: shapes.count)
        for index in shapes.indices.reversed() {
            let n = Shape.count(shapes[index])
            if buckets.isEmpty || (buckets.last!.count > 0 && buckets.last!.count + n > capacity) { buckets.append(Bucket()) }
            let bucket = buckets.last!
            place[index] = (buckets.count - 1, bucket.count)
            bucket.count += n
            bucket.remaining += 1
        }
        for bucket in buckets {
            precondition(bucket.count <= Int(Int32.max), "averagedGradients: a gradient of \(bucket.count) values is more than one MPI call takes")
            bucket.values = TensorStorage(count: bucket.count)
        }
    }

    func gradientIsFinal(index: Int, gradient: Tensor) {
        let (b, offset) = place[index]
        let bucket = buckets[b]
        precondition(gradient.shape == shapes[index], "averagedGradients: gradient \(index) has shape \(gradient.shape), expected \(shapes[index])")
        withExtendedLifetime(gradient) { (bucket.values.pointer + offset).update(from: gradient.pointer, count: gradient.count) }
        bucket.remaining -= 1
        while nextToStart < buckets.count && buckets[nextToStart].remaining == 0 {
            let next = buckets[nextToStart]
            next.sum = group.startSum(UnsafeMutableBufferPointer(start: next.values.pointer, count: next.count))
            nextToStart += 1
        }
    }

    /// When the sums in flight were last tested (`DispatchTime` nanoseconds).
    private var lastTest: UInt64 = 0
    /// How long the pass computes between two tests. A test is cheap, but Open MPI yields the core
    /// in one when nothing is ready and processes outnumber cores, which costs a time slice:
    /// testing after every node made the paper configuration's ordinary step 10–25% slower.
    static let testInterval: UInt64 = 2_000_000

    func nodeFinished() {
        guard oldestInFlight < nextToStart else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now &- lastTest >= Self.testInterval else { return }
        lastTest = now
        // One test lets every started sum advance (MPI progresses non-blocking collectives inside its calls).
        while oldestInFlight < nextToStart, buckets[oldestInFlight].sum!.test() { oldestInFlight += 1 }
    }

    /// The averaged gradients, once every bucket's sum is complete.
    func finish() -> [Tensor] {
        precondition(nextToStart == buckets.count, "averagedGradients: the pass did not complete every gradient")
        for bucket in buckets { bucket.sum!.wait() }
        let scale = 1 / Float(group.size)
        return shapes.indices.map { index in
            let (b, offset) = place[index]
            let n = Shape.count(shapes[index])
            let storage = TensorStorage(count: n)
            ElementwiseKernels.affine(buckets[b].values.pointer + offset, scale: scale, shift: 0, storage.pointer, count: n)
            return Tensor(storage: storage, shape: shapes[index])
        }
    }
}
