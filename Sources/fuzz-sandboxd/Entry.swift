#if canImport(Glibc)
import Glibc
#endif
#if FUZZING
import CSandboxShim
#endif
import FuzzHarnesses

/// The harness this process fuzzes: `SANDBOXD_FUZZ_HARNESS` (see `make fuzz`).
let selectedHarness: Harness = {
    let name = getenv("SANDBOXD_FUZZ_HARNESS").map { String(cString: $0) } ?? ""
    guard let harness = Harness(rawValue: name) else {
        let names = Harness.allCases.map(\.rawValue).joined(separator: ", ")
        fatalError("set SANDBOXD_FUZZ_HARNESS to one of: \(names)")
    }
    return harness
}()

#if FUZZING
/// libFuzzer's entry point. libFuzzer's own `main` is linked in too (the driver pulls it) and calls it;
/// `FuzzMain` below is the one that runs, as SwiftPM points `main` at the module's entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selectedHarness.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}
#endif

/// With `-DFUZZING` (and `-sanitize=fuzzer,address`): runs libFuzzer's driver over the selected harness,
/// with libFuzzer's usual arguments. Without it: replays the given input files (`fuzz-sandboxd FILE...`).
@main
struct FuzzMain {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        _ = selectedHarness
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
        #else
        for path in CommandLine.arguments.dropFirst() {
            guard let file = fopen(path, "rb") else { fatalError("cannot open \(path)") }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = fread(&chunk, 1, chunk.count, file)
                if count <= 0 { break }
                bytes += chunk.prefix(count)
            }
            fclose(file)
            selectedHarness.run(bytes)
            print("ok \(path)")
        }
        #endif
    }
}
