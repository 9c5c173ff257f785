import Distillation
import Engine
import XCTest

final class HardSampleBufferTests: XCTestCase {
    /// Images whose every value is the sample's id, so slots can be traced.
    func batch(ids: [Int]) -> Tensor {
        Tensor.make([ids.count, 1, 2, 2]) { p, _ in for (i, id) in ids.enumerated() { for k in 0..<4 { p[i * 4 + k] = Float(id) } } }
    }

    /// Logits predicting `predicted[i]` for sample i (3 classes).
    func logits(_ predicted: [Int]) -> Tensor {
        Tensor.make([predicted.count, 3]) { p, _ in for (i, c) in predicted.enumerated() { for k in 0..<3 { p[i * 3 + k] = k == c ? 1 : 0 } } }
    }

    func testFillsThenReplacesOnlyWithMisclassifiedSamples() {
        var buffer = HardSampleBuffer(capacity: 6, seed: 1)
        buffer.offer(images: batch(ids: [0, 1, 2, 3]), labels: [0, 1, 2, 0], studentLogits: logits([0, 1, 2, 0]))
        XCTAssertEqual(buffer.count, 4)
        buffer.offer(images: batch(ids: [4, 5, 6, 7]), labels: [1, 1, 1, 1], studentLogits: logits([1, 1, 1, 1]))
        XCTAssertTrue(buffer.isFull, "the second batch is truncated to the capacity")
        XCTAssertEqual(buffer.images.map { $0.scalars[0] }, [0, 1, 2, 3, 4, 5])
        // Full: only samples 10 and 12 are misclassified; they replace two distinct slots.
        buffer.offer(images: batch(ids: [10, 11, 12, 13]), labels: [0, 1, 2, 0], studentLogits: logits([1, 1, 0, 0]))
        let ids = buffer.images.map { Int($0.scalars[0]) }
        XCTAssertEqual(ids.filter { $0 >= 10 }.sorted(), [10, 12])
        XCTAssertEqual(buffer.labels[ids.firstIndex(of: 10)!], 0)
        XCTAssertEqual(buffer.labels[ids.firstIndex(of: 12)!], 2)
        // A batch without mistakes changes nothing.
        let before = buffer.images.map { $0.scalars[0] }
        buffer.offer(images: batch(ids: [20, 21]), labels: [0, 1], studentLogits: logits([0, 1]))
        XCTAssertEqual(buffer.images.map { $0.scalars[0] }, before)
    }

    /// `--compat official`: whole batches are appended and the buffer is full only when the count
    /// lands exactly on the capacity (the official `HardBuffer.put`).
    func testOfficialFillCountsAsFullOnlyAtAMultipleOfTheBatch() {
        var uneven = HardSampleBuffer(capacity: 6, seed: 1, officialFill: true)
        for b in 0..<3 {
            uneven.offer(images: batch(ids: (0..<4).map { b * 4 + $0 }), labels: [0, 1, 2, 0], studentLogits: logits([1, 1, 0, 0]))
        }
        XCTAssertFalse(uneven.isFull, "4 + 4 passes 6 without landing on it")
        XCTAssertEqual(uneven.count, 12, "every regular batch is kept, misclassified or not")
        XCTAssertEqual(uneven.images.map { Int($0.scalars[0]) }, Array(0..<12))
        XCTAssertEqual(Set((0..<10).flatMap { _ in (0..<4).map { Int(uneven.sample(4).images.scalars[$0 * 4]) } }).isSubset(of: Set(0..<12)), true)

        var even = HardSampleBuffer(capacity: 8, seed: 1, officialFill: true)
        var paper = HardSampleBuffer(capacity: 8, seed: 1)
        for b in 0..<4 {
            let images = batch(ids: (0..<4).map { b * 4 + $0 }), l = logits([1, 1, 0, 0])
            even.offer(images: images, labels: [0, 1, 2, 0], studentLogits: l)
            paper.offer(images: images, labels: [0, 1, 2, 0], studentLogits: l)
        }
        XCTAssertTrue(even.isFull)
        XCTAssertEqual(even.images.map { $0.scalars }, paper.images.map { $0.scalars }, "a multiple of the batch behaves as the paper's buffer")
        XCTAssertEqual(even.labels, paper.labels)
    }

    func testSamplesDistinctSlotsWithTheirCachedTeacherOutputs() {
        var buffer = HardSampleBuffer(capacity: 8, seed: 3)
        let teacher = Tensor.make([8, 3]) { p, _ in for i in 0..<24 { p[i] = Float(i / 3) } }  // row i holds i
        let map = Tensor.make([8, 2]) { p, _ in for i in 0..<16 { p[i] = Float(100 + i / 2) } }  // row i holds 100 + i
        buffer.offer(images: batch(ids: Array(0..<8)), labels: Array(0..<8).map { $0 % 3 }, studentLogits: logits(Array(repeating: 0, count: 8)),
                     teacherOutputs: [TeacherOutputs(logits: teacher, penultimate: map, hint: map)])
        for _ in 0..<20 {
            let (images, labels, outputs) = buffer.sample(5)
            XCTAssertEqual(images.shape, [5, 1, 2, 2])
            let ids = (0..<5).map { Int(images.scalars[$0 * 4]) }
            XCTAssertEqual(Set(ids).count, 5, "distinct slots")
            XCTAssertEqual(labels, ids.map { $0 % 3 })
            XCTAssertEqual(outputs.count, 1)
            XCTAssertEqual(outputs[0].logits.shape, [5, 3])
            XCTAssertEqual(outputs[0].penultimate.shape, [5, 2])
            XCTAssertEqual((0..<5).map { Int(outputs[0].logits.scalars[$0 * 3]) }, ids, "cached outputs travel with their samples")
            XCTAssertEqual((0..<5).map { Int(outputs[0].penultimate.scalars[$0 * 2]) - 100 }, ids)
        }
    }

    func testSameSeedSameReplacements() {
        func run() -> [Float] {
            var b = HardSampleBuffer(capacity: 4, seed: 9)
            b.offer(images: batch(ids: [0, 1, 2, 3]), labels: [0, 0, 0, 0], studentLogits: logits([0, 0, 0, 0]))
            b.offer(images: batch(ids: [5, 6]), labels: [1, 1], studentLogits: logits([0, 0]))
            return b.images.map { $0.scalars[0] } + b.sample(3).images.scalars
        }
        XCTAssertEqual(run(), run())
    }
}
