public import SystemPackage

/// Why a cgroup operation failed: a stable code, a message naming the file, and the errno when there is one.
public struct CgroupError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// The host cannot enforce what was asked (controller missing, not delegated, no cgroupfs).
        case unavailable = "cgroup-unavailable"
        /// Reading or writing a cgroup file or directory failed.
        case io = "cgroup-io"
        /// Processes were still in a cgroup after the kill deadline.
        case busy = "cgroup-busy"
    }

    public var code: Code
    public var message: String
    public var errno: Errno?

    public init(_ code: Code, _ message: String, errno: Errno? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    public var description: String {
        if let errno { return "\(code.rawValue): \(message): \(errno)" }
        return "\(code.rawValue): \(message)"
    }
}
