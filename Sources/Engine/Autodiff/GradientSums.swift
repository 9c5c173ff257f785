/// The gradient a backward pass accumulates for each node and leaf of the graph, and the order
/// the pass runs them in.
///
/// The pass runs nodes newest first (`schedule`), as PyTorch's engine does: a node runs, and the
/// values only it kept are freed, as soon as every consumer has run. A second-order pass through
/// a recorded first-order graph then holds about one pending gradient per layer; a depth-first
/// order held many more (ShuffleV1's meta step: 2.3 GB live at the peak against 1.9 GB).
///
/// The contributions to one gradient are added in a fixed order whatever the order they arrive
/// in: that of a depth-first walk from the output (consumers in reverse post-order, then by input
/// position), in which the pass used to run. A sum of three or more contributions so associates as
/// it always has, and every gradient stays bit-identical. A contribution that arrives before one
/// that precedes it in that order waits for it, or for its consumer to finish without one.
struct GradientSums {
    private struct Accumulator {
        var sum: Tensor?
        /// How many of the expected contributions are added or known not to come.
        var cursor = 0
        /// Contributions that arrived ahead of their turn, by their index in the expected list.
        var waiting: [Int: Tensor] = [:]
    }

    /// Per position of `order`: the key of each input that receives a gradient (nil for the others).
    private let inputKeys: [[ObjectIdentifier?]]
    /// Per key: the contributions expected, in summation order, as (consumer position, input index).
    private var expected: [ObjectIdentifier: [(position: Int, input: Int)]] = [:]
    /// Per position and input: the contribution's index in its key's `expected` list.
    private var slot: [[Int]]
    private var accumulators: [ObjectIdentifier: Accumulator] = [:]
    private var finishedPositions: [Bool]

    /// `order`: the graph in post-order from the output; `isRelevant`: whether an input gets a gradient.
    init(order: [GraphEdge?], isRelevant: (GraphEdge) -> Bool) {
        inputKeys = order.map { edge in (edge!.node?.inputs ?? []).map { isRelevant($0) ? $0.key : nil } }
        slot = inputKeys.map { [Int](repeating: -1, count: $0.count) }
        finishedPositions = [Bool](repeating: false, count: order.count)
        for position in order.indices.reversed() {
            for (input, key) in inputKeys[position].enumerated() {
                guard let key else { continue }
                slot[position][input] = expected[key, default: []].count
                expected[key, default: []].append((position, input))
            }
        }
    }

    /// The positions of `order` in the order the pass runs them: nodes newest first, each leaf
    /// right after the last of its consumers (so that its gradient is reported as soon as it is
    /// complete), the output first.
    static func schedule(_ order: [GraphEdge?]) -> [Int] {
        let nodes = order.indices.filter { order[$0]!.node != nil }
            .sorted { order[$0]!.node!.sequence > order[$1]!.node!.sequence }
        // Each leaf's last consumer: the one with the smallest sequence number.
        var lastConsumer: [ObjectIdentifier: (sequence: Int, position: Int)] = [:]
        for position in nodes {
            let node = order[position]!.node!
            for edge in node.inputs where edge.node == nil {
                guard let key = edge.key else { continue }
                if let current = lastConsumer[key], current.sequence < node.sequence { continue }
                lastConsumer[key] = (node.sequence, position)
            }
        }
        var leavesAfter: [Int: [Int]] = [:]
        var schedule: [Int] = []
        for position in order.indices.reversed() where order[position]!.node == nil {
            if let key = order[position]!.key, let consumer = lastConsumer[key] {
                leavesAfter[consumer.position, default: []].append(position)
            } else {
                schedule.append(position)  // the output itself
            }
        }
        for position in nodes {
            schedule.append(position)
            schedule += leavesAfter[position] ?? []
        }
        return schedule
    }

    /// Starts the output's gradient at `seed`.
    mutating func seed(_ key: ObjectIdentifier, _ seed: Tensor) {
        accumulators[key] = Accumulator(sum: seed)
    }

    /// Adds the gradient that the node at `position` gives its input `input`.
    mutating func add(_ gradient: Tensor, from position: Int, input: Int) {
        let key = inputKeys[position][input]!
        accumulators[key, default: Accumulator()].waiting[slot[position][input]] = gradient
        advance(key)
    }

    /// The node at `position` has run: no further contribution comes from it.
    mutating func finished(_ position: Int) {
        finishedPositions[position] = true
        for key in inputKeys[position] { if let key { advance(key) } }
    }

    /// The complete gradient of `key` (nil when none arrived), kept.
    func total(_ key: ObjectIdentifier) -> Tensor? {
        precondition(accumulators[key]?.waiting.isEmpty ?? true, "gradients: a node ran before all of its consumers")
        return accumulators[key]?.sum
    }

    /// The complete gradient of `key`, no longer kept.
    mutating func take(_ key: ObjectIdentifier) -> Tensor? {
        defer { accumulators[key] = nil }
        return total(key)
    }

    /// Adds the contributions to `key` whose turn has come.
    private mutating func advance(_ key: ObjectIdentifier) {
        guard let list = expected[key] else { return }
        var accumulator = accumulators[key, default: Accumulator()]
        while accumulator.cursor < list.count {
            if let next = accumulator.waiting.removeValue(forKey: accumulator.cursor) {
                accumulator.sum = accumulator.sum.map { $0 + next } ?? next
            } else if !finishedPositions[list[accumulator.cursor].position] {
                break
            }
            accumulator.cursor += 1
        }
        accumulators[key] = accumulator
    }
}
