#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// The libFuzzer harnesses of `make fuzz` (issue #11): each takes one input and must neither crash nor
/// hang on any input; a violated invariant is a `fatalError` so libFuzzer records the input.
///
/// `fuzz-sandboxd` calls ``run(_:_:)`` from `LLVMFuzzerTestOneInput` (harness chosen by
/// `SANDBOXD_FUZZ_HARNESS`); `FuzzRegressionTests` replays every seed and kept crasher through the same
/// entry, so a crasher found once stays a regression test.
public enum Harness: String, CaseIterable, Sendable {
    /// The CBOR decoder and validator (strict profile), with a canonical round trip.
    case cbor
    /// RHP frames and messages as the host receives them (a hostile runtime's bytes).
    case rhpHost = "rhp-host"
    /// RHP frames and messages as the runtime side receives them.
    case rhpGuest = "rhp-guest"
    /// An HTTP/1.1 request through NIO's parser, the router, the handlers and spec validation.
    case http
    /// The daemon's YAML config loader (declared runtimes included).
    case config
    /// The ELF / shared-library resolver on a hostile executable.
    case elf

    /// Runs the harness on one input.
    public func run(_ bytes: UnsafeRawBufferPointer) {
        switch self {
        case .cbor: CBORHarness.run(bytes)
        case .rhpHost: RHPHarness.run(bytes, role: .host)
        case .rhpGuest: RHPHarness.run(bytes, role: .guest)
        case .http: HTTPHarness.run(bytes)
        case .config: ConfigHarness.run(bytes)
        case .elf: ELFHarness.run(bytes)
        }
    }

    public func run(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { run($0) }
    }
}

/// Runs async code to completion from a synchronous harness (libFuzzer calls in on its own thread).
func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let result = Mutex<T?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let value = await body()
        result.withLock { $0 = value }
        done.signal()
    }
    done.wait()
    return result.withLock { $0! }
}
