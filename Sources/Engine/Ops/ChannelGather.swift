extension Tensor {
    /// The channels of an [N, C, H, W] tensor in another order: output channel j is input channel
    /// `order[j]` (`order` a permutation of 0..<C), in the layout the input was produced in — a
    /// dense channel-blocked input (NCHW{B}c, as convolutions and batch norm leave activations)
    /// gives a blocked output without a round trip through plain NCHW. Values are copied exactly.
    /// Its derivative is the gather by the inverse permutation, so it has gradients of every order.
    public func channelsGathered(_ order: [Int]) -> Tensor {
        precondition(rank == 4, "channelsGathered: input must be [N, C, H, W], got \(shape)")
        precondition(order.count == shape[1] && Set(order).count == order.count && order.allSatisfy { (0..<shape[1]).contains($0) },
                     "channelsGathered: \(order.count) indices are not a permutation of the \(shape[1]) channels")
        if order == Array(0..<shape[1]) { return self }
        let (n, c, planeSize) = (shape[0], shape[1], shape[2] * shape[3])
        var inverse = [Int](repeating: 0, count: c)
        for (j, i) in order.enumerated() { inverse[i] = j }
        let format: DNNLFormat, block: Int
        if let (f, b) = denseChannelBlocked { (format, block) = (f, b) } else { (format, block) = (DNNLFormat.plain(shape), 1) }
        let source = SendablePointer(data(in: format))
        let storage = TensorStorage(count: format.elementCount)
        let target = SendablePointer(storage.pointer)
        // Element (image, channel, s) sits at ((image·C/B + channel/B)·planeSize + s)·B + channel%B.
        // One job per image and output block: its B source channels are read in step, its output
        // written in order.
        let blocks = c / block
        let offsets = order.map { i in (i / block) * planeSize * block + i % block }
        Parallel.chunks(n * blocks, grain: Swift.max(1, 16_384 / Swift.max(planeSize * block, 1))) { range in
            offsets.withUnsafeBufferPointer { offsets in
                for job in range {
                    let (image, b) = job.quotientAndRemainder(dividingBy: blocks)
                    let from = source.pointer + image * c * planeSize, to = target.pointer + (image * blocks + b) * planeSize * block
                    if block == 1 {
                        to.update(from: from + offsets[b], count: planeSize)
                        continue
                    }
                    let lanes = offsets.baseAddress! + b * block
                    for s in 0..<planeSize {
                        let f = from + s * block, t = to + s * block
                        for lane in 0..<block { t[lane] = f[lanes[lane]] }
                    }
                }
            }
        }
        return Tensor.recorded("channelsGathered", storage: storage, format: format, inputs: [self],
                               backward: Derivatives.channelsGathered(inverse: inverse))
    }
}
