import Foundation

/// A value of a MATLAB v5 `.mat` file.
public indirect enum MATValue: Equatable {
    case cell([MATValue], dims: [Int])
    case char(String)
    case numeric([Double], dims: [Int])
    /// Classes this reader does not interpret (structs, sparse, objects).
    case unsupported(classID: Int)
}

/// A reader of MATLAB level-5 MAT files (little-endian; compressed or not): cell arrays, character
/// arrays and numeric arrays of any stored integer or float type, enough for Stanford Dogs'
/// `train_list.mat` / `test_list.mat`.
public struct MATFile {
    public let path: String
    /// Variables by name.
    public private(set) var variables: [String: MATValue] = [:]
    /// Cells within cells deeper than this are refused (a hostile file would exhaust the stack).
    static let maximumDepth = 64

    public init(_ bytes: [UInt8], path: String) throws {
        self.path = path
        guard bytes.count >= 128 else { throw SerializationError.corrupt(path: path, reason: "\(bytes.count) bytes, shorter than the 128-byte MAT header") }
        guard bytes[126] == UInt8(ascii: "I"), bytes[127] == UInt8(ascii: "M") else {
            if bytes[126] == UInt8(ascii: "M") && bytes[127] == UInt8(ascii: "I") {
                throw SerializationError.unsupported(path: path, reason: "big-endian MAT file")
            }
            throw SerializationError.corrupt(path: path, reason: "not a MATLAB v5 MAT file (no 'IM' endian mark in the header; v7.3 files are HDF5)")
        }
        var p = 128
        while p + 8 <= bytes.count {
            let (type, size, dataStart, next) = try MATFile.tag(bytes, p, path: path)
            var element = Array(bytes[dataStart..<(dataStart + size)])
            var elementType = type
            if type == 15 {
                element = try Inflate.inflate(element, framing: .zlib, path: path, limit: 1 << 31)
                let (t, s, d, _) = try MATFile.tag(element, 0, path: path)
                elementType = t
                element = Array(element[d..<(d + s)])
            }
            if elementType == 14 {
                let (name, value) = try MATFile.matrix(element, path: path)
                variables[name] = value
            }
            p = type == 15 ? dataStart + size : next
        }
    }

    /// (type, byte count, data offset, offset of the next element) of the element at `p`.
    static func tag(_ b: [UInt8], _ p: Int, path: String) throws -> (Int, Int, Int, Int) {
        guard p + 8 <= b.count else { throw SerializationError.corrupt(path: path, reason: "element tag at byte \(p) is truncated") }
        let first = u32(b, p)
        if first >> 16 != 0 {  // small element: size in the upper half, data in the next four bytes
            guard first >> 16 <= 4 else {
                throw SerializationError.corrupt(path: path, reason: "small element at byte \(p) claims \(first >> 16) bytes, expected at most 4")
            }
            return (first & 0xFFFF, first >> 16, p + 4, p + 8)
        }
        let size = u32(b, p + 4)
        guard p + 8 + size <= b.count else { throw SerializationError.corrupt(path: path, reason: "element at byte \(p) claims \(size) bytes past the end") }
        return (first, size, p + 8, p + 8 + (size + 7) / 8 * 8)
    }

    static func u32(_ b: [UInt8], _ p: Int) -> Int { Int(b[p]) | Int(b[p + 1]) << 8 | Int(b[p + 2]) << 16 | Int(b[p + 3]) << 24 }

    /// Parses the contents of an miMATRIX element: (name, value).
    static func matrix(_ b: [UInt8], path: String, depth: Int = 0) throws -> (String, MATValue) {
        guard depth < MATFile.maximumDepth else {
            throw SerializationError.corrupt(path: path, reason: "cells nested more than \(MATFile.maximumDepth) deep")
        }
        var subelements: [(Int, [UInt8])] = []
        var p = 0
        // Flags, dimensions and name come first; a cell's elements follow as nested matrices.
        while p + 8 <= b.count {
            let (t, s, d, next) = try tag(b, p, path: path)
            subelements.append((t, Array(b[d..<(d + s)])))
            p = next
        }
        guard subelements.count >= 3, subelements[0].1.count >= 4 else { throw SerializationError.corrupt(path: path, reason: "matrix without flags, dimensions and name") }
        let classID = Int(subelements[0].1[0])
        let name = String(decoding: subelements[2].1, as: UTF8.self)
        let rawDims = numbers(subelements[1].0, subelements[1].1)
        guard rawDims.allSatisfy({ $0 >= 0 && $0 <= Double(Int32.max) && $0 == $0.rounded() }) else {
            throw SerializationError.corrupt(path: path, reason: "matrix '\(name)' has dimensions \(rawDims), expected whole numbers ≥ 0")
        }
        let dims = rawDims.map { Int($0) }
        guard let count = CheckedCount.product(dims), count <= b.count else {
            throw SerializationError.corrupt(path: path, reason: "matrix '\(name)' has dimensions \(dims), more elements than its \(b.count) bytes hold")
        }
        switch classID {
        case 1:  // cell
            let cells = try subelements.dropFirst(3).map { t, data -> MATValue in
                guard t == 14 else { throw SerializationError.corrupt(path: path, reason: "cell '\(name)' holds a non-matrix element") }
                return try matrix(data, path: path, depth: depth + 1).1
            }
            guard cells.count == count else { throw SerializationError.corrupt(path: path, reason: "cell '\(name)' has \(cells.count) of \(count) elements") }
            return (name, .cell(cells, dims: dims))
        case 4:  // char
            guard let (t, data) = subelements.dropFirst(3).first else { return (name, .char("")) }
            let text: String
            switch t {
            case 16, 1, 2: text = String(decoding: data, as: UTF8.self)
            default:
                let units = numbers(t, data)
                guard units.allSatisfy({ $0 >= 0 && $0 <= 65535 && $0 == $0.rounded() }) else {
                    throw SerializationError.corrupt(path: path, reason: "char matrix '\(name)' holds values that are not UTF-16 code units")
                }
                text = String(decoding: units.map { UInt16($0) }, as: UTF16.self)
            }
            return (name, .char(text))
        case 6...15:  // numeric (double, single, integers)
            guard let (t, data) = subelements.dropFirst(3).first else { return (name, .numeric([], dims: dims)) }
            let values = numbers(t, data)
            guard values.count == count else { throw SerializationError.corrupt(path: path, reason: "'\(name)' holds \(values.count) of \(count) values") }
            return (name, .numeric(values, dims: dims))
        default:
            return (name, .unsupported(classID: classID))
        }
    }

    /// The numbers of a numeric sub-element of MAT data type `t`.
    static func numbers(_ t: Int, _ d: [UInt8]) -> [Double] {
        d.withUnsafeBytes { raw -> [Double] in
            func load<T>(_ type: T.Type, _ convert: (T) -> Double) -> [Double] {
                (0..<(raw.count / MemoryLayout<T>.size)).map { convert(raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
            }
            switch t {
            case 1: return load(Int8.self) { Double($0) }
            case 2: return load(UInt8.self) { Double($0) }
            case 3: return load(Int16.self) { Double($0) }
            case 4: return load(UInt16.self) { Double($0) }
            case 5: return load(Int32.self) { Double($0) }
            case 6: return load(UInt32.self) { Double($0) }
            case 7: return load(Float.self) { Double($0) }
            case 9: return load(Double.self) { $0 }
            case 12: return load(Int64.self) { Double($0) }
            case 13: return load(UInt64.self) { Double($0) }
            default: return []
            }
        }
    }
}
