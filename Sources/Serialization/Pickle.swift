import Foundation

/// A value produced by unpickling. Objects are kept symbolic: a callable's global name with its
/// arguments and any `BUILD` state, so callers interpret just what they recognise (PyTorch tensors,
/// NumPy arrays) and nothing is ever executed.
public indirect enum PickleValue: CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list([PickleValue])
    case tuple([PickleValue])
    case dict([(PickleValue, PickleValue)])
    case global(module: String, name: String)
    /// `callable(*arguments)`, then `__setstate__(state)` when a BUILD followed.
    case object(callable: PickleValue, arguments: [PickleValue], state: PickleValue?)
    case persistent(PickleValue)

    public var description: String {
        switch self {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return "\(i)"
        case .float(let d): return "\(d)"
        case .string(let s): return "'\(s)'"
        case .bytes(let b): return "b<\(b.count) bytes>"
        case .list(let l): return "[\(l.map(\.description).joined(separator: ", "))]"
        case .tuple(let t): return "(\(t.map(\.description).joined(separator: ", ")))"
        case .dict(let d): return "{\(d.prefix(8).map { "\($0.0): \($0.1)" }.joined(separator: ", "))\(d.count > 8 ? ", …" : "")}"
        case let .global(m, n): return "\(m).\(n)"
        case let .object(c, a, _): return "\(c)(\(a.map(\.description).joined(separator: ", ")))"
        case .persistent(let p): return "persistent(\(p))"
        }
    }

    /// Dictionary entries keyed by string (or bytes, as Python 2 pickles have them).
    public var stringKeyedEntries: [(String, PickleValue)]? {
        switch self {
        case .dict(let pairs):
            return pairs.compactMap { key, value in
                switch key {
                case .string(let s): return (s, value)
                case .bytes(let b): return (String(decoding: b, as: UTF8.self), value)
                default: return nil
                }
            }
        case let .object(callable, _, state?) where callable.isGlobal("collections", "OrderedDict"):
            return state.stringKeyedEntries
        case let .object(callable, _, nil) where callable.isGlobal("collections", "OrderedDict"):
            return []
        default: return nil
        }
    }

    public func isGlobal(_ module: String, _ name: String) -> Bool {
        if case let .global(m, n) = self { return m == module && n == name }
        return false
    }
}

/// A pickle reader for protocols 0–5 without `exec`: the opcodes PyTorch's `torch.save` and
/// NumPy/Python 2 data files use.
public struct Unpickler {
    let bytes: [UInt8]
    let path: String
    var position = 0
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]

    public init(_ bytes: [UInt8], path: String) { self.bytes = bytes; self.path = path }

    func fail(_ reason: String) -> SerializationError { .corrupt(path: path, reason: "pickle at byte \(position): \(reason)") }

    mutating func read(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, position + n <= bytes.count else { throw fail("truncated (wanted \(n) bytes)") }
        defer { position += n }
        return bytes[position..<(position + n)]
    }
    mutating func byte() throws -> UInt8 { try read(1).first! }
    mutating func uint(_ n: Int) throws -> Int { try read(n).reversed().reduce(0) { $0 << 8 | Int($1) } }
    mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail("unterminated text line") }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }
    mutating func pop() throws -> PickleValue { guard let v = stack.popLast() else { throw fail("stack underflow") }; return v }
    mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast(), m <= stack.count else { throw fail("missing MARK") }
        defer { stack.removeSubrange(m...) }
        return Array(stack[m...])
    }

    /// Runs the pickle program to its STOP and returns the value.
    public mutating func load() throws -> PickleValue {
        while true {
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                   // PROTO
            case 0x95: _ = try read(8)                                  // FRAME
            case 0x2E: return try pop()                                  // STOP
            case 0x4E: stack.append(.none)                               // NONE
            case 0x88: stack.append(.bool(true))                         // NEWTRUE
            case 0x89: stack.append(.bool(false))                        // NEWFALSE
            case 0x4B: stack.append(.int(try uint(1)))                   // BININT1
            case 0x4D: stack.append(.int(try uint(2)))                   // BININT2
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4))))) // BININT
            case 0x8A, 0x8B:                                            // LONG1, LONG4
                let n = try uint(op == 0x8A ? 1 : 4)
                let raw = Array(try read(n))
                guard n <= 8 else { throw fail("integer of \(n) bytes") }
                var v = 0
                for (i, b) in raw.enumerated() { v |= Int(b) << (8 * i) }
                if n > 0 && n < 8 && raw.last! & 0x80 != 0 { v -= 1 << (8 * n) }
                stack.append(.int(v))
            case 0x49:                                                  // INT (text)
                let s = try line()
                stack.append(s == "01" ? .bool(true) : s == "00" ? .bool(false) : .int(Int(s) ?? 0))
            case 0x47:                                                  // BINFLOAT (big-endian)
                stack.append(.float(Double(bitPattern: UInt64(try read(8).reduce(0) { $0 << 8 | UInt64($1) }))))
            case 0x58, 0x8C, 0x8D:                                      // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                let n = try uint(op == 0x8C ? 1 : op == 0x58 ? 4 : 8)
                stack.append(.string(String(decoding: try read(n), as: UTF8.self)))
            case 0x54, 0x55, 0x42, 0x43, 0x8E:                          // BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES, BINBYTES8
                let n = try uint([0x54: 4, 0x55: 1, 0x42: 4, 0x43: 1, 0x8E: 8][op]!)
                stack.append(.bytes(Array(try read(n))))
            case 0x96: stack.append(.bytes(Array(try read(try uint(8)))))  // BYTEARRAY8
            case 0x7D: stack.append(.dict([]))                           // EMPTY_DICT
            case 0x5D: stack.append(.list([]))                           // EMPTY_LIST
            case 0x29: stack.append(.tuple([]))                          // EMPTY_TUPLE
            case 0x8F: stack.append(.list([]))                           // EMPTY_SET (as a list)
            case 0x28: marks.append(stack.count)                         // MARK
            case 0x74: stack.append(.tuple(try popMark()))               // TUPLE
            case 0x85: stack.append(.tuple([try pop()]))                 // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))                  // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c])) // TUPLE3
            case 0x6C: stack.append(.list(try popMark()))                // LIST
            case 0x64:                                                  // DICT
                let items = try popMark()
                stack.append(.dict(stride(from: 0, to: items.count - 1, by: 2).map { (items[$0], items[$0 + 1]) }))
            case 0x61:                                                  // APPEND
                let v = try pop()
                guard case .list(var l) = try pop() else { throw fail("APPEND to a non-list") }
                l.append(v); stack.append(.list(l))
            case 0x65, 0x90:                                            // APPENDS, ADDITEMS
                let items = try popMark()
                guard case .list(var l) = try pop() else { throw fail("APPENDS to a non-list") }
                l += items; stack.append(.list(l))
            case 0x73:                                                  // SETITEM
                let v = try pop(), k = try pop()
                stack.append(try setItems(try pop(), [(k, v)]))
            case 0x75:                                                  // SETITEMS
                let items = try popMark()
                let pairs = stride(from: 0, to: items.count - 1, by: 2).map { (items[$0], items[$0 + 1]) }
                stack.append(try setItems(try pop(), pairs))
            case 0x63:                                                  // GLOBAL
                let module = try line(), name = try line()
                stack.append(.global(module: module, name: name))
            case 0x93:                                                  // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw fail("STACK_GLOBAL needs two strings") }
                stack.append(.global(module: module, name: name))
            case 0x52:                                                  // REDUCE
                guard case .tuple(let args) = try pop() else { throw fail("REDUCE arguments are not a tuple") }
                stack.append(.object(callable: try pop(), arguments: args, state: nil))
            case 0x81:                                                  // NEWOBJ
                guard case .tuple(let args) = try pop() else { throw fail("NEWOBJ arguments are not a tuple") }
                stack.append(.object(callable: try pop(), arguments: args, state: nil))
            case 0x62:                                                  // BUILD
                let state = try pop()
                switch try pop() {
                case let .object(c, a, items?) where c.isGlobal("collections", "OrderedDict"):
                    // An OrderedDict's BUILD sets attributes (a state dict's `_metadata`); its items stay.
                    stack.append(.object(callable: c, arguments: a, state: items))
                case let .object(c, a, _): stack.append(.object(callable: c, arguments: a, state: state))
                case let other: stack.append(.object(callable: other, arguments: [], state: state))
                }
            case 0x51: stack.append(.persistent(try pop()))              // BINPERSID
            case 0x71: memo[try uint(1)] = stack.last                    // BINPUT
            case 0x72: memo[try uint(4)] = stack.last                    // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                     // MEMOIZE
            case 0x68, 0x6A:                                            // BINGET, LONG_BINGET
                let key = try uint(op == 0x68 ? 1 : 4)
                guard let v = memo[key] else { throw fail("memo \(key) is empty") }
                stack.append(v)
            case 0x30: _ = try pop()                                     // POP
            case 0x31: _ = try popMark()                                 // POP_MARK
            case 0x32: stack.append(stack.last ?? .none)                 // DUP
            default: throw fail(String(format: "unsupported opcode 0x%02x", op))
            }
        }
    }

    func setItems(_ target: PickleValue, _ pairs: [(PickleValue, PickleValue)]) throws -> PickleValue {
        switch target {
        case .dict(let d): return .dict(d + pairs)
        case let .object(c, a, s):
            // An OrderedDict being filled: keep the entries as its state.
            var existing: [(PickleValue, PickleValue)] = []
            if case .dict(let d)? = s { existing = d }
            return .object(callable: c, arguments: a, state: .dict(existing + pairs))
        default: throw fail("SETITEM on \(target)")
        }
    }
}
