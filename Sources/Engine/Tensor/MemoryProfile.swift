import CKernels
import Foundation

/// Who holds the memory at the high-water mark: every live tensor buffer with the call stack that
/// allocated it, and at each new high of live bytes (in steps of 0.5%) the live bytes summed by
/// stack. Off unless `MMKD_PROFILE_MEMORY=1`, when `mmkd` prints `report()` at exit: the stacks
/// holding the most at the highest mark, engine frames named. A disabled profile costs one branch
/// per allocation; an enabled one a `backtrace` per allocation and a pass over the live buffers at
/// each new high, so time measured with it on means nothing.
package enum MemoryProfile {
    package static let isEnabled = ProcessInfo.processInfo.environment["MMKD_PROFILE_MEMORY"] == "1"

    private struct Buffer { let bytes: Int; let stack: Int }
    private static let lock = NSLock()
    // Guarded by `lock`.
    nonisolated(unsafe) private static var live: [UnsafeMutableRawPointer: Buffer] = [:]
    nonisolated(unsafe) private static var stacks: [[UInt]] = []
    nonisolated(unsafe) private static var stackIDs: [[UInt]: Int] = [:]
    nonisolated(unsafe) private static var liveBytes = 0
    nonisolated(unsafe) private static var peak: (bytes: Int, byStack: [Int: (bytes: Int, buffers: Int)]) = (0, [:])

    /// Records a buffer handed out.
    static func allocated(_ pointer: UnsafeMutableRawPointer, _ bytes: Int) {
        lock.lock(); defer { lock.unlock() }
        var frames = [UnsafeMutableRawPointer?](repeating: nil, count: 24)
        let depth = Int(backtrace(&frames, Int32(frames.count)))
        let stack = frames.prefix(depth).map { UInt(bitPattern: $0) }
        let id = stackIDs[stack] ?? {
            stacks.append(stack)
            stackIDs[stack] = stacks.count - 1
            return stacks.count - 1
        }()
        live[pointer] = Buffer(bytes: bytes, stack: id)
        liveBytes += bytes
        guard liveBytes > peak.bytes + peak.bytes / 200 else { return }
        var byStack: [Int: (bytes: Int, buffers: Int)] = [:]
        for b in live.values {
            let e = byStack[b.stack] ?? (0, 0)
            byStack[b.stack] = (e.bytes + b.bytes, e.buffers + 1)
        }
        peak = (liveBytes, byStack)
    }

    /// Records a buffer given back.
    static func released(_ pointer: UnsafeMutableRawPointer) {
        lock.lock(); defer { lock.unlock() }
        if let b = live.removeValue(forKey: pointer) { liveBytes -= b.bytes }
    }

    /// The stacks holding the most bytes at the highest mark recorded, `limit` of them, each with
    /// its first `frames` frames outside the allocator.
    package static func report(limit: Int = 25, frames: Int = 7) -> String {
        lock.lock(); defer { lock.unlock() }
        let rows = Array(peak.byStack.sorted { $0.value.bytes > $1.value.bytes }.prefix(limit))
        let names = functionNames(rows.map { stacks[$0.key] })
        var text = String(format: "memory: %.1f MB live at the high-water mark, %d allocating stacks; the largest:\n",
                          Double(peak.bytes) / 1e6, peak.byStack.count)
        for ((_, e), stack) in zip(rows, names) {
            text += String(format: "%9.1f MB %6d buffers\n", Double(e.bytes) / 1e6, e.buffers)
            for name in stack.filter({ !isAllocator($0) }).prefix(frames) { text += "      \(name)\n" }
        }
        return text
    }

    private static func isAllocator(_ name: String) -> Bool {
        ["StoragePool", "TensorStorage", "MemoryProfile", "backtrace"].contains { name.contains($0) }
    }

    /// Demangled function names of the return addresses of `stacks`. `backtrace_symbols` names
    /// only exported functions; the others (the executable's own, as it exports none) are looked up
    /// with binutils' `addr2line` by their offset in the file, one run per file, or left as
    /// `file(+offset)` without it.
    private static func functionNames(_ stacks: [[UInt]]) -> [[String]] {
        var pointers = stacks.joined().map { UnsafeMutableRawPointer(bitPattern: $0) }
        guard let symbols = backtrace_symbols(&pointers, Int32(pointers.count)) else { return stacks.map { _ in [] } }
        // "file(symbol+0xoffset) [address]" or "file(+0xoffset) [address]".
        enum Frame { case named(String), unexported(file: String, offset: String), unknown(String) }
        let frames: [Frame] = (0..<pointers.count).map { i in
            let line = symbols[i].map { String(cString: $0) } ?? "?"
            guard let open = line.firstIndex(of: "("), let plus = line[open...].firstIndex(of: "+"),
                  let close = line[plus...].firstIndex(of: ")") else { return .unknown(line) }
            let symbol = String(line[line.index(after: open)..<plus])
            return symbol.isEmpty ? .unexported(file: String(line[..<open]), offset: String(line[line.index(after: plus)..<close]))
                                  : .named(symbol)
        }
        free(symbols)
        var offsets: [String: Set<String>] = [:]
        for case let .unexported(file, offset) in frames { offsets[file, default: []].insert(offset) }
        let found = offsets.mapValues { Array($0) }.reduce(into: [String: [String: String]]()) { $0[$1.key] = addr2line($1.key, $1.value) }
        var names = frames.map { frame -> String in
            switch frame {
            case .named(let symbol): return String(demangled(symbol).prefix(160))
            case .unexported(let file, let offset): return found[file]?[offset].map { String(demangled($0).prefix(160)) } ?? "\(file)(+\(offset))"
            case .unknown(let line): return line
            }
        }[...]
        return stacks.map { stack in
            defer { names = names.dropFirst(stack.count) }
            return Array(names.prefix(stack.count))
        }
    }

    /// The (mangled) function at each of `offsets` (hex) in `file`, by `addr2line`.
    private static func addr2line(_ file: String, _ offsets: [String]) -> [String: String] {
        let process = Process(), output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/addr2line")
        process.arguments = ["-f", "-e", file] + offsets
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return [:] }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // Two lines per address: the function, then file:line.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var result: [String: String] = [:]
        for (i, offset) in offsets.enumerated() where 2 * i < lines.count && lines[2 * i] != "??" { result[offset] = String(lines[2 * i]) }
        return result
    }

    /// The Swift runtime's demangling of `mangled`, shortened: argument lists elided, the
    /// specialisation and thunk prefixes dropped.
    private static func demangled(_ mangled: String) -> String {
        guard let result = mangled.withCString({ swift_demangle($0, strlen($0), nil, nil, 0) }) else { return mangled }
        defer { free(result) }
        var name = Substring(String(cString: result))
        for prefix in ["partial apply forwarder for ", "merged "] where name.hasPrefix(prefix) { name = name.dropFirst(prefix.count) }
        while name.hasPrefix("generic specialization") || name.hasPrefix("function signature specialization"), let of = name.range(of: "> of ") {
            name = name[of.upperBound...]
        }
        // Keep what precedes each top-level argument list: "f(…) in g(…)".
        var short = "", depth = 0
        for c in name {
            if c == "(" { if depth == 0 { short += "(…)" }; depth += 1 } else if c == ")" { depth = max(0, depth - 1) } else if depth == 0 { short.append(c) }
        }
        return short.replacingOccurrences(of: "Swift.", with: "").replacingOccurrences(of: "Engine.", with: "")
    }
}

@_silgen_name("swift_demangle")
private func swift_demangle(_ mangledName: UnsafePointer<CChar>?, _ length: Int, _ outputBuffer: UnsafeMutablePointer<CChar>?,
                            _ outputBufferSize: UnsafeMutablePointer<Int>?, _ flags: UInt32) -> UnsafeMutablePointer<CChar>?
