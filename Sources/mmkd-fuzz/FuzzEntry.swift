import Foundation
import Fuzzing

#if LIBFUZZER
/// libFuzzer's driver (libclang_rt.fuzzer), run from this tool's own `main` because SwiftPM makes an
/// executable's entry point its `@main` type; `MMKD_FUZZ_TARGET` names the harness.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@main
enum FuzzTool {
    static let harness: ParserHarness = {
        let name = ProcessInfo.processInfo.environment["MMKD_FUZZ_TARGET"] ?? ""
        guard let h = ParserHarness.named(harness: name) else {
            fatalError("set MMKD_FUZZ_TARGET to one of: \(ParserHarness.all.map(\.name).joined(separator: ", ")) (got '\(name)')")
        }
        return h
    }()

    static func main() {
        _ = harness
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, count in
            FuzzTool.harness.run(count == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: count)))
            return 0
        })
    }
}
#else
/// Without libFuzzer: lists the harnesses, replays inputs through one, or writes the seed corpus.
@main
enum FuzzTool {
    static let usage = """
    usage: mmkd-fuzz list
           mmkd-fuzz replay HARNESS FILE-OR-FOLDER...   run inputs through a parser, print each outcome
           mmkd-fuzz seeds FOLDER                        write the generated seeds to FOLDER/HARNESS/
    (scripts/fuzz.sh builds this tool with libFuzzer and runs every harness)
    """

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            switch arguments.first {
            case "list":
                for h in ParserHarness.all { print("\(h.name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(h.summary)") }
            case "replay" where arguments.count >= 3:
                guard let harness = ParserHarness.named(harness: arguments[1]) else { fail("unknown harness '\(arguments[1])'") }
                for path in try files(Array(arguments.dropFirst(2))) {
                    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
                    print("\(path): \(harness.run(bytes) ?? "read")")
                }
            case "seeds" where arguments.count == 2:
                for (name, files) in try SeedFiles.corpus().sorted(by: { $0.key < $1.key }) {
                    let folder = arguments[1] + "/" + name
                    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                    for (file, bytes) in files { try Data(bytes).write(to: URL(fileURLWithPath: folder + "/" + file)) }
                    print("\(folder): \(files.count) seeds")
                }
            default:
                fail(usage)
            }
        } catch {
            fail("\(error)")
        }
    }

    /// The files named, with folders expanded to the files they hold (sorted).
    static func files(_ paths: [String]) throws -> [String] {
        try paths.flatMap { path -> [String] in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { fail("\(path): not found") }
            guard isDirectory.boolValue else { return [path] }
            return try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 }
        }
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
        exit(2)
    }
}
#endif
