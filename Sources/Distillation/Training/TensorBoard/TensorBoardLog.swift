import Foundation
import SwiftProtobuf

/// A run's metrics as a TensorBoard event file (`events.out.tfevents.mmkd` in the run folder), so
/// that `tensorboard --logdir runs` shows every run. Each scalar of a `metrics.jsonl` line becomes a
/// summary value at step = its epoch, tagged with its key (`train_loss`, `test_top1`, `lr`,
/// `images_per_s`, the methods' terms, `meta_steps`, `hypergradient_norm`, …); a per-teacher list
/// (`logit_weight_mean`, `feature_weight_mean`, …) becomes `KEY/teacher_K`. The file is derived
/// from the metrics whole and rewritten atomically after each epoch, so a resumed run's file holds
/// each epoch once.
///
/// Records use TFRecord framing: the little-endian 64-bit length, its masked CRC-32C, the
/// serialized `Event`, its masked CRC-32C.
public enum TensorBoardLog {
    public static let fileName = "events.out.tfevents.mmkd"

    /// Keys that are not logged (the epoch is the step; `seconds` goes into the wall time).
    static let skipped: Set<String> = ["epoch", "seconds", "meta_seconds"]

    /// The scalars of one metrics line: (tag, value), sorted by tag.
    public static func scalars(_ row: [String: Any]) -> [(tag: String, value: Float)] {
        var out: [(String, Float)] = []
        for (key, value) in row where !skipped.contains(key) {
            if let list = value as? [Any] {
                for (k, v) in list.enumerated() { if let d = (v as? NSNumber)?.doubleValue { out.append(("\(key)/teacher_\(k)", Float(d))) } }
            } else if let d = (value as? NSNumber)?.doubleValue {
                out.append((key, Float(d)))
            }
        }
        return out.sorted { $0.0 < $1.0 }
    }

    /// The event file of `rows` (metrics lines), the first epoch starting at `start` (seconds since 1970).
    public static func events(_ rows: [[String: Any]], start: Double) throws -> Data {
        var file = Data()
        var first = Tensorboard_Event()
        first.wallTime = start
        first.fileVersion = "brain.Event:2"
        file.append(try record(first))
        var time = start
        for row in rows {
            time += (row["seconds"] as? NSNumber)?.doubleValue ?? 0
            var event = Tensorboard_Event()
            event.wallTime = time
            event.step = Int64((row["epoch"] as? NSNumber)?.intValue ?? 0)
            event.summary = Tensorboard_Summary.with { summary in
                summary.value = scalars(row).map { s in Tensorboard_Summary.Value.with { $0.tag = s.tag; $0.simpleValue = s.value } }
            }
            file.append(try record(event))
        }
        return file
    }

    /// One TFRecord holding `event`.
    static func record(_ event: Tensorboard_Event) throws -> Data {
        let payload: Data = try event.serializedData()
        var length = UInt64(payload.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Data($0) }
        var out = lengthBytes
        out.append(contentsOf: littleEndian(CRC32C.masked(CRC32C.checksum(lengthBytes))))
        out.append(payload)
        out.append(contentsOf: littleEndian(CRC32C.masked(CRC32C.checksum(payload))))
        return out
    }

    static func littleEndian(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }
}
