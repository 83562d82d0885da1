#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// The process's real `argv`, for Swift programs that run without `/proc` (Oasis sandboxes never mount it).
///
/// Swift's `CommandLine.arguments` on Linux is read from `/proc/self/cmdline`: without `/proc` it is
/// empty and every flag is silently dropped. glibc calls each function in an ELF object's `.init_array`
/// with `(argc, argv, envp)` before `main`; this module puts one such function there (`@used
/// @section`, plain Swift, no C) and copies `argv` into ``captured``.
///
/// Use ``commandLine()`` instead of `CommandLine.arguments`; it never returns an empty list silently:
/// a program whose arguments cannot be known exits with a message instead of running with defaults.
/// With swift-argument-parser: `await MyCommand.main(Array(RuntimeArguments.commandLine().dropFirst()))`.
public enum RuntimeArguments {
    /// `argv` as captured before `main`, or nil when the loader did not pass it (a libc other than glibc).
    public static var captured: [String]? { storage.withLock { $0 } }

    /// The full command line (`argv[0]` first): the captured one, else `CommandLine.arguments` when that
    /// is not empty (`/proc` is mounted). Exits the process with status 70 when neither is available.
    public static func commandLine() -> [String] {
        switch resolve(captured: captured, fallback: CommandLine.arguments) {
        case .success(let arguments):
            return arguments
        case .failure(let error):
            let message = "\(error)\n"
            _ = message.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
            exit(70)  // EX_SOFTWARE
        }
    }

    /// Why the command line is unknown.
    public struct Unavailable: Error, CustomStringConvertible, Equatable {
        /// Stable code for matching.
        public let code = "arguments_unavailable"
        public init() {}
        public var description: String {
            "cannot read the command line: argv was not captured at load time (not glibc?) and "
                + "/proc/self/cmdline is unavailable (no /proc); refusing to run with default arguments"
        }
    }

    /// The decision ``commandLine()`` makes, without side effects (for tests).
    public static func resolve(captured: [String]?, fallback: [String]) -> Result<[String], Unavailable> {
        if let captured { return .success(captured) }
        if !fallback.isEmpty { return .success(fallback) }
        return .failure(Unavailable())
    }

    /// Written once by the constructor before `main`, read afterwards; a lock keeps it simple and safe.
    static let storage = Mutex<[String]?>(nil)

    static func capture(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
        guard let argv, argc >= 0 else { return }
        var arguments: [String] = []
        arguments.reserveCapacity(Int(argc))
        for index in 0..<Int(argc) {
            guard let argument = argv[index] else { return }  // a malformed vector: leave it uncaptured
            arguments.append(String(cString: argument))
        }
        storage.withLock { $0 = arguments }
    }
}

/// The `.init_array` entry: glibc calls it with `(argc, argv, envp)` after the Swift runtime's own
/// constructors (shared libraries initialise before the executable) and before `main`.
@used @section(".init_array")
let runtimeArgumentsConstructor: @convention(c) (
    CInt, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> Void = { argc, argv, _ in RuntimeArguments.capture(argc, argv) }
