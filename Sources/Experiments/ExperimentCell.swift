import Distillation
import Foundation

/// One training run of an experiment: a teacher trained in it, or a (pair, method, seed) cell.
/// Each has its own run directory; `result.json` appears there only once the run has finished, so
/// its presence is what "done" means.
public struct ExperimentCell: Sendable {
    public enum Kind: Sendable {
        case teacher(ExperimentSpec.Teacher)
        case alone(student: String, seed: UInt64)
        case distill(pair: ExperimentSpec.Pair, method: ExperimentSpec.Method, seed: UInt64)
    }

    public let kind: Kind
    /// Run directory, relative to the experiment's output folder.
    public let path: String

    /// A short description for progress lines.
    public var label: String {
        switch kind {
        case let .teacher(t): return "teacher \(t.name) (\(t.arch))"
        case let .alone(student, seed): return "\(student) alone, seed \(seed)"
        case let .distill(pair, method, seed): return "\(pair.label) · \(method.name) · seed \(seed)"
        }
    }

    /// What a finished cell leaves in `result.json`.
    public struct Result: Codable, Equatable, Sendable {
        public var cell: String
        public var pair: String?
        public var method: String
        public var seed: UInt64
        public var epochs: Int
        public var bestTop1: Double
        public var lastTop1: Double
        public var bestEpoch: Int
        public var seconds: Double

        enum CodingKeys: String, CodingKey {
            case cell, pair, method, seed, epochs, bestTop1 = "best_top1", lastTop1 = "last_top1", bestEpoch = "best_epoch", seconds
        }
    }
}

extension ExperimentSpec {
    /// Every run, in the order they execute: teachers to train first, then each pair's cells, seed
    /// by seed, methods in the file's order (so an early stop still leaves whole seeds). A student
    /// trained alone is one run per architecture and seed, shared by the pairs that have it.
    public func cells() -> [ExperimentCell] {
        var out = teachers.filter { $0.train != nil }.map { ExperimentCell(kind: .teacher($0), path: "teachers/\($0.name)") }
        var alone = Set<String>()
        for pair in pairs {
            for seed in seeds {
                for m in methods {
                    let path = cellPath(pair: pair, method: m, seed: seed)
                    if m.isAlone {
                        if alone.insert(path).inserted { out.append(ExperimentCell(kind: .alone(student: pair.student, seed: seed), path: path)) }
                    } else {
                        out.append(ExperimentCell(kind: .distill(pair: pair, method: m, seed: seed), path: path))
                    }
                }
            }
        }
        return out
    }

    /// The run directory of (pair, method, seed), relative to the output folder: `cells/PAIR/METHOD/seedN`,
    /// or `alone/STUDENT/seedN` for the student alone (shared by the pairs with that student).
    public func cellPath(pair: Pair, method: Method, seed: UInt64) -> String {
        method.isAlone ? "alone/\(pair.student)/seed\(seed)" : "cells/\(pair.label)/\(method.name)/seed\(seed)"
    }

    /// The checkpoint a teacher is read from: its file, or the best epoch of its run here.
    public func checkpoint(of teacher: Teacher, output: URL) -> String {
        teacher.checkpoint ?? output.appendingPathComponent("teachers/\(teacher.name)/best.safetensors").path
    }
}
