#if canImport(Glibc)
import Glibc
#endif
import SystemCalls
import SystemPackage

/// Sockets passed by systemd (`sandboxd.socket`), found by their `FileDescriptorName=`.
///
/// The daemon adopts the socket as it is: it never binds, chmods or unlinks a passed socket, whose path,
/// mode and group belong to the socket unit.
public enum SocketActivation {
    /// The `FileDescriptorName=` of the control socket in `sandboxd.socket`.
    public static let controlName = "control"

    /// The passed listening socket named `name`, or nil when the daemon was not socket-activated with it.
    ///
    /// Throws when `LISTEN_*` is malformed or when the descriptor is not a listening UNIX stream socket.
    public static func listeningSocket(named name: String = controlName) throws(SystemdError) -> Int32? {
        guard let fd = try LibSystemd.listenFDs().first(where: { $0.name == name })?.fd else { return nil }
        try verifyListeningUnixStream(fd, name: name)
        return fd
    }

    /// Checks `SO_DOMAIN` = `AF_UNIX`, `SO_TYPE` = `SOCK_STREAM` and `SO_ACCEPTCONN` = 1.
    public static func verifyListeningUnixStream(_ fd: Int32, name: String = controlName) throws(SystemdError) {
        func option(_ option: Int32, _ label: String) throws(SystemdError) -> Int32 {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            do {
                try retryingInterrupts("getsockopt(\(fd), \(label))") { getsockopt(fd, SOL_SOCKET, option, &value, &length) }
            } catch {
                throw SystemdError(
                    .unexpectedSocket, operation: error.operation,
                    message: "passed fd \(fd) (\(name)) is not a socket: \(error)", errno: error.errno
                )
            }
            return value
        }
        let domain = try option(SO_DOMAIN, "SO_DOMAIN")
        let type = try option(SO_TYPE, "SO_TYPE")
        let listening = try option(SO_ACCEPTCONN, "SO_ACCEPTCONN")
        var problems: [String] = []
        if domain != AF_UNIX { problems.append("domain \(domain) is not AF_UNIX") }
        if type != Int32(SOCK_STREAM.rawValue) { problems.append("type \(type) is not SOCK_STREAM") }
        if listening != 1 { problems.append("it is not listening") }
        guard problems.isEmpty else {
            throw SystemdError(
                .unexpectedSocket, operation: "verify(\(name))",
                message: "passed fd \(fd) (\(name)): " + problems.joined(separator: ", "), errno: .invalidArgument
            )
        }
    }
}
