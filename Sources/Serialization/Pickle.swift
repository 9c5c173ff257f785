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

    /// A Python-like rendering, cut short with "…" past a few hundred characters (a hostile pickle's
    /// shared subtrees could otherwise expand exponentially).
    public var description: String {
        var budget = 240
        return render(&budget)
    }

    private func render(_ budget: inout Int) -> String {
        guard budget > 0 else { return "…" }
        func items(_ values: [PickleValue], _ budget: inout Int) -> String {
            var parts: [String] = []
            for v in values {
                guard budget > 0 else { parts.append("…"); break }
                parts.append(v.render(&budget))
            }
            return parts.joined(separator: ", ")
        }
        let text: String
        switch self {
        case .none: text = "None"
        case .bool(let b): text = b ? "True" : "False"
        case .int(let i): text = "\(i)"
        case .float(let d): text = "\(d)"
        case .string(let s): text = "'\(s.prefix(80))\(s.count > 80 ? "…" : "")'"
        case .bytes(let b): text = "b<\(b.count) bytes>"
        case .list(let l): text = "[\(items(l, &budget))]"
        case .tuple(let t): text = "(\(items(t, &budget)))"
        case .dict(let d):
            var parts: [String] = []
            for (k, v) in d.prefix(8) {
                guard budget > 0 else { parts.append("…"); break }
                parts.append("\(k.render(&budget)): \(v.render(&budget))")
            }
            text = "{\(parts.joined(separator: ", "))\(d.count > 8 ? ", …" : "")}"
        case let .global(m, n): text = "\(m.prefix(80)).\(n.prefix(80))"
        case let .object(c, a, _): text = "\(c.render(&budget))(\(items(a, &budget)))"
        case .persistent(let p): text = "persistent(\(p.render(&budget)))"
        }
        switch self {
        case .list, .tuple, .dict, .object, .persistent: budget -= 2
        default: budget -= text.count
        }
        return text
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
/// NumPy/Python 2 data files use. Every length is checked against the bytes left, and values nested
/// deeper than `maximumDepth` are refused (their release would exhaust the stack).
public struct Unpickler {
    /// A value on the stack with its nesting depth (1 for a scalar).
    struct Item { var value: PickleValue; var depth: Int }

    static let maximumDepth = 500
    let bytes: [UInt8]
    let path: String
    var position = 0
    var stack: [Item] = []
    var marks: [Int] = []
    var memo: [Int: Item] = [:]

    public init(_ bytes: [UInt8], path: String) { self.bytes = bytes; self.path = path }

    func fail(_ reason: String) -> SerializationError { .corrupt(path: path, reason: "pickle at byte \(position): \(reason)") }

    mutating func read(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - position else { throw fail("truncated (wanted \(n) bytes, \(bytes.count - position) left)") }
        defer { position += n }
        return bytes[position..<(position + n)]
    }
    mutating func byte() throws -> UInt8 { try read(1).first! }
    /// An unsigned little-endian integer of `n` ≤ 8 bytes (8-byte values past `Int.max` are negative
    /// and fail as lengths).
    mutating func uint(_ n: Int) throws -> Int { try read(n).reversed().reduce(0) { $0 << 8 | Int($1) } }
    mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail("unterminated text line") }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }
    mutating func push(_ value: PickleValue) { stack.append(Item(value: value, depth: 1)) }
    /// Pushes a container of `children`, refusing one nested too deep.
    mutating func push(_ value: PickleValue, holding children: [Item]) throws {
        let depth = 1 + (children.map(\.depth).max() ?? 0)
        guard depth <= Unpickler.maximumDepth else { throw fail("values nested more than \(Unpickler.maximumDepth) deep") }
        stack.append(Item(value: value, depth: depth))
    }
    /// Pushes `target` grown by `children` (APPEND, SETITEM, BUILD): as deep as it was, or one more
    /// than its deepest new child.
    mutating func push(_ value: PickleValue, extending target: Item, with children: [Item]) throws {
        let depth = max(target.depth, 1 + (children.map(\.depth).max() ?? 0))
        guard depth <= Unpickler.maximumDepth else { throw fail("values nested more than \(Unpickler.maximumDepth) deep") }
        stack.append(Item(value: value, depth: depth))
    }
    mutating func pop() throws -> Item { guard let v = stack.popLast() else { throw fail("stack underflow") }; return v }
    mutating func popMark() throws -> [Item] {
        guard let m = marks.popLast(), m <= stack.count else { throw fail("missing MARK") }
        defer { stack.removeSubrange(m...) }
        return Array(stack[m...])
    }
    static func pairs(_ items: [Item]) -> [(PickleValue, PickleValue)] {
        stride(from: 0, to: items.count - 1, by: 2).map { (items[$0].value, items[$0 + 1].value) }
    }

    /// Runs the pickle program to its STOP and returns the value.
    public mutating func load() throws -> PickleValue {
        while true {
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                   // PROTO
            case 0x95: _ = try read(8)                                  // FRAME
            case 0x2E: return try pop().value                            // STOP
            case 0x4E: push(.none)                                       // NONE
            case 0x88: push(.bool(true))                                 // NEWTRUE
            case 0x89: push(.bool(false))                                // NEWFALSE
            case 0x4B: push(.int(try uint(1)))                           // BININT1
            case 0x4D: push(.int(try uint(2)))                           // BININT2
            case 0x4A: push(.int(Int(Int32(truncatingIfNeeded: try uint(4))))) // BININT
            case 0x8A, 0x8B:                                            // LONG1, LONG4
                let n = try uint(op == 0x8A ? 1 : 4)
                guard n <= 8 else { throw fail("integer of \(n) bytes, expected at most 8") }
                let raw = Array(try read(n))
                var v = 0
                for (i, b) in raw.enumerated() { v |= Int(b) << (8 * i) }
                if n > 0 && n < 8 && raw.last! & 0x80 != 0 { v -= 1 << (8 * n) }
                push(.int(v))
            case 0x49:                                                  // INT (text)
                let s = try line()
                if s == "01" { push(.bool(true)) } else if s == "00" { push(.bool(false)) } else {
                    guard let v = Int(s) else { throw fail("INT '\(s.prefix(40))' is not an integer") }
                    push(.int(v))
                }
            case 0x47:                                                  // BINFLOAT (big-endian)
                push(.float(Double(bitPattern: UInt64(try read(8).reduce(0) { $0 << 8 | UInt64($1) }))))
            case 0x58, 0x8C, 0x8D:                                      // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                let n = try uint(op == 0x8C ? 1 : op == 0x58 ? 4 : 8)
                push(.string(String(decoding: try read(n), as: UTF8.self)))
            case 0x54, 0x55, 0x42, 0x43, 0x8E:                          // BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES, BINBYTES8
                let n = try uint([0x54: 4, 0x55: 1, 0x42: 4, 0x43: 1, 0x8E: 8][op]!)
                push(.bytes(Array(try read(n))))
            case 0x96: push(.bytes(Array(try read(try uint(8)))))        // BYTEARRAY8
            case 0x7D: push(.dict([]))                                   // EMPTY_DICT
            case 0x5D: push(.list([]))                                   // EMPTY_LIST
            case 0x29: push(.tuple([]))                                  // EMPTY_TUPLE
            case 0x8F: push(.list([]))                                   // EMPTY_SET (as a list)
            case 0x28: marks.append(stack.count)                         // MARK
            case 0x74: let items = try popMark(); try push(.tuple(items.map(\.value)), holding: items)  // TUPLE
            case 0x85, 0x86, 0x87:                                      // TUPLE1, TUPLE2, TUPLE3
                var items: [Item] = []
                for _ in 0..<Int(op - 0x84) { items.insert(try pop(), at: 0) }
                try push(.tuple(items.map(\.value)), holding: items)
            case 0x6C: let items = try popMark(); try push(.list(items.map(\.value)), holding: items)   // LIST
            case 0x64: let items = try popMark(); try push(.dict(Unpickler.pairs(items)), holding: items) // DICT
            case 0x61:                                                  // APPEND
                let v = try pop(), target = try pop()
                guard case .list(var l) = target.value else { throw fail("APPEND to a non-list") }
                l.append(v.value); try push(.list(l), extending: target, with: [v])
            case 0x65, 0x90:                                            // APPENDS, ADDITEMS
                let items = try popMark(), target = try pop()
                guard case .list(var l) = target.value else { throw fail("APPENDS to a non-list") }
                l += items.map(\.value); try push(.list(l), extending: target, with: items)
            case 0x73:                                                  // SETITEM
                let v = try pop(), k = try pop(), target = try pop()
                try push(try setItems(target.value, [(k.value, v.value)]), extending: target, with: [k, v])
            case 0x75:                                                  // SETITEMS
                let items = try popMark(), target = try pop()
                try push(try setItems(target.value, Unpickler.pairs(items)), extending: target, with: items)
            case 0x63:                                                  // GLOBAL
                let module = try line(), name = try line()
                push(.global(module: module, name: name))
            case 0x93:                                                  // STACK_GLOBAL
                guard case .string(let name) = try pop().value, case .string(let module) = try pop().value else { throw fail("STACK_GLOBAL needs two strings") }
                push(.global(module: module, name: name))
            case 0x52, 0x81:                                            // REDUCE, NEWOBJ
                let args = try pop(), callable = try pop()
                guard case .tuple(let values) = args.value else { throw fail("\(op == 0x52 ? "REDUCE" : "NEWOBJ") arguments are not a tuple") }
                try push(.object(callable: callable.value, arguments: values, state: nil), holding: [callable, args])
            case 0x62:                                                  // BUILD
                let state = try pop(), target = try pop()
                switch target.value {
                case let .object(c, _, _?) where c.isGlobal("collections", "OrderedDict"):
                    // An OrderedDict's BUILD sets attributes (a state dict's `_metadata`); its items stay.
                    stack.append(target)
                case let .object(c, a, _): try push(.object(callable: c, arguments: a, state: state.value), extending: target, with: [state])
                case let other: try push(.object(callable: other, arguments: [], state: state.value), holding: [target, state])
                }
            case 0x51: let v = try pop(); try push(.persistent(v.value), holding: [v])  // BINPERSID
            case 0x71: memo[try uint(1)] = stack.last                    // BINPUT
            case 0x72: memo[try uint(4)] = stack.last                    // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                     // MEMOIZE
            case 0x68, 0x6A:                                            // BINGET, LONG_BINGET
                let key = try uint(op == 0x68 ? 1 : 4)
                guard let v = memo[key] else { throw fail("memo \(key) is empty") }
                stack.append(v)
            case 0x30: _ = try pop()                                     // POP
            case 0x31: _ = try popMark()                                 // POP_MARK
            case 0x32: stack.append(stack.last ?? Item(value: .none, depth: 1))  // DUP
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
