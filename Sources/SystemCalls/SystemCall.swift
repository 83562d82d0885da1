#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import SystemPackage

/// A failed system call: which operation, and the `Errno` the kernel returned.
///
/// Every raw syscall in the project goes through ``retryingInterrupts(_:_:)`` or
/// ``checkErrnoValue(_:_:)``, so errors always name the operation that failed; a caller that handles the
/// failure itself (EOF, `EAGAIN`, a best-effort write) uses ``retryingEINTR(_:)``. Two kinds of loop handle
/// `EINTR` themselves: waits against a deadline (`poll` with a computed timeout, `nanosleep` with the time
/// left), because a retry must recompute the time, and the C shim's, which stay C.
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The operation, e.g. `"connect(/run/sandboxd.sock)"`.
    public var operation: String
    public var errno: Errno

    public init(_ operation: String, errno: Errno) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation): \(errno) (errno \(errno.rawValue))" }
}

/// Runs a libc-style call that returns -1 and sets `errno` on failure, retrying on `EINTR`.
@discardableResult
public func retryingInterrupts<T: FixedWidthInteger>(
    _ operation: @autoclosure () -> String,
    _ body: () -> T
) throws(SystemCallError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code == EINTR { continue }
        throw SystemCallError(operation(), errno: Errno(rawValue: code))
    }
}

/// Runs a libc-style call (-1 and `errno` on failure), retrying while it fails with `EINTR`; returns the
/// last result with `errno` as that call left it, for callers that inspect the failure themselves.
@discardableResult
public func retryingEINTR<T: FixedWidthInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result == -1 && errno == EINTR { continue }
        return result
    }
}

/// Turns a C shim's return value (0 or a positive errno, never -1) into a typed error.
public func checkErrnoValue(_ operation: @autoclosure () -> String, _ value: Int32) throws(SystemCallError) {
    if value != 0 { throw SystemCallError(operation(), errno: Errno(rawValue: value)) }
}
