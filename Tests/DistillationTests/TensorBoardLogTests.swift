import Distillation
import Foundation
import SwiftProtobuf
import XCTest

/// The event files TensorBoard reads: CRC-32C against published vectors, TFRecord framing, and the
/// events read back (here with the generated messages; `scripts/check_tensorboard.py`, run by
/// `scripts/test.sh` when `tensorboard` is installed, reads them with TensorBoard's own reader).
final class TensorBoardLogTests: XCTestCase {
    func testCRC32CMatchesPublishedVectors() {
        // RFC 3720 (iSCSI) B.4 and the usual check value.
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map(UInt8.init)), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }), 0x113F_DB5C)
        XCTAssertEqual(CRC32C.masked(0), 0xA282_EAD8)
    }

    /// The records of an event file, each checked against its two CRCs.
    static func records(_ data: Data) throws -> [Tensorboard_Event] {
        let bytes = [UInt8](data)
        var p = 0, out: [Tensorboard_Event] = []
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
        while p < bytes.count {
            let length = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[p + $1]) << (8 * UInt64($1)) })
            XCTAssertEqual(u32(p + 8), CRC32C.masked(CRC32C.checksum(bytes[p..<(p + 8)])), "length CRC at \(p)")
            let payload = bytes[(p + 12)..<(p + 12 + length)]
            XCTAssertEqual(u32(p + 12 + length), CRC32C.masked(CRC32C.checksum(payload)), "data CRC at \(p)")
            out.append(try Tensorboard_Event(serializedBytes: Array(payload)))
            p += 12 + length + 4
        }
        return out
    }

    func testEveryScalarOfTheMetricsIsAnEvent() throws {
        let rows: [[String: Any]] = [
            ["epoch": 1, "train_loss": 2.5, "test_top1": 31.25, "lr": 0.05, "images_per_s": 120.0, "seconds": 10.0,
             "logit_weight_mean": [0.4, 0.6], "meta_steps": 3, "hypergradient_norm": 0.125],
            ["epoch": 2, "train_loss": 2.0, "test_top1": 40.5, "lr": 0.005, "images_per_s": 130.0, "seconds": 9.0,
             "logit_weight_mean": [0.45, 0.55], "meta_steps": 3, "hypergradient_norm": 0.0625],
        ]
        let events = try Self.records(try TensorBoardLog.events(rows, start: 1000))
        XCTAssertEqual(events.count, 3)
        XCTAssertEqual(events[0].fileVersion, "brain.Event:2")
        XCTAssertEqual(events.map(\.step), [0, 1, 2])
        XCTAssertEqual(events.map(\.wallTime), [1000, 1010, 1019])
        let second = Dictionary(uniqueKeysWithValues: events[2].summary.value.map { ($0.tag, $0.simpleValue) })
        XCTAssertEqual(second, ["train_loss": 2.0, "test_top1": 40.5, "lr": 0.005, "images_per_s": 130, "logit_weight_mean/teacher_0": 0.45,
                                "logit_weight_mean/teacher_1": 0.55, "meta_steps": 3, "hypergradient_norm": 0.0625])
    }
}
