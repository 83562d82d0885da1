#if canImport(Glibc)
import Glibc
#endif
import Foundation
public import Logging
import SystemCalls

/// The control socket, bound by the daemon itself (no socket activation yet).
///
/// Binding never steals a live daemon's socket: an existing path is unlinked only when `connect` to it
/// fails with `ECONNREFUSED` (nobody listens: a stale file from a crash). The socket is `0660` owned by
/// `root:<group>` when the group exists, otherwise `0600` root-only with a warning.
public struct ControlSocket: Sendable {
    /// The listening descriptor (blocking mode; NIO switches it to non-blocking).
    public let descriptor: CInt
    public let path: String
    /// The group allowed besides root (`nil`: root only).
    public let groupID: UInt32?
    /// Inode of the bound socket file, so shutdown removes only our own file.
    let inode: ino_t
    /// Passed by systemd: its path, mode and group belong to the socket unit, and it is never unlinked.
    var adopted = false

    /// Adopts a listening socket passed by systemd (already checked by `SocketActivation`).
    public static func adopt(descriptor: CInt, logger: Logger) throws(DaemonError) -> ControlSocket {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let named = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) == 0 }
        }
        let path = named ? withUnsafeBytes(of: address.sun_path) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } : ""
        var info = stat()
        let groupID: UInt32? = !path.isEmpty && stat(path, &info) == 0 && info.st_gid != 0 ? info.st_gid : nil
        logger.info("using the socket-activated control socket", metadata: ["socket": "\(path)", "fd": "\(descriptor)"])
        var socket = ControlSocket(descriptor: descriptor, path: path.isEmpty ? "fd:\(descriptor)" : path, groupID: groupID, inode: 0)
        socket.adopted = true
        return socket
    }

    /// Binds and listens on `path`.
    public static func bind(path: String, group: String?, logger: Logger) throws(DaemonError) -> ControlSocket {
        guard path.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else {
            throw DaemonError(.invalidConfig, "socket path is too long for a UNIX socket: \(path)", field: "socket.path")
        }
        try removeIfStale(path: path, logger: logger)
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty { try Directories.ensure(parent, mode: 0o755) }

        var groupID: gid_t?
        if let group {
            groupID = lookupGroup(group)
            if groupID == nil {
                logger.warning(
                    "socket group does not exist; the control socket is root-only (mode 0600)",
                    metadata: ["group": "\(group)"]
                )
            }
        }

        do {
            let fd = try retryingInterrupts("socket(AF_UNIX)") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
            do {
                var address = try makeAddress(path)
                // No umask games: umask is process-wide and would race with runtimes being spawned (their
                // sandbox mount points would inherit it). Instead the socket's own inode mode is narrowed
                // before bind (Linux creates the file with it, less the umask), so the file is never more
                // open than 0600; the instant before the final mode is harmless anyway because every
                // connection is checked with SO_PEERCRED.
                try retryingInterrupts("fchmod(socket)") { fchmod(fd, 0o600) }
                try withUnsafePointer(to: &address) { pointer in
                    try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                        _ = try retryingInterrupts("bind(\(path))") {
                            Glibc.bind(fd, raw, socklen_t(MemoryLayout<sockaddr_un>.size))
                        }
                    }
                }
                // Owner and mode by descriptor (O_PATH|O_NOFOLLOW + fstat: still a socket, not a symlink
                // swapped in since bind), never by a path a writable parent could redirect.
                if let groupID {
                    try secureOwnership(of: path, expecting: .socket, owner: (0, groupID), mode: 0o660)
                } else {
                    try secureOwnership(of: path, expecting: .socket, mode: 0o600)
                }
                try retryingInterrupts("listen(\(path))") { listen(fd, 512) }
                var info = stat()
                try retryingInterrupts("lstat(\(path))") { lstat(path, &info) }
                return ControlSocket(descriptor: fd, path: path, groupID: groupID, inode: info.st_ino)
            } catch {
                close(fd)
                throw error
            }
        } catch let error as DaemonError {
            throw error
        } catch {
            throw DaemonError(.socketInUse, "cannot bind the control socket \(path): \(error)")
        }
    }

    /// Unlinks `path` only if it is a socket nobody listens on; fails if a live process answers.
    static func removeIfStale(path: String, logger: Logger) throws(DaemonError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw DaemonError(.socketInUse, "\(path) exists and is not a socket; refusing to remove it")
        }
        switch probe(path: path) {
        case 0:
            throw DaemonError(.socketInUse, "another process (a running sandboxd?) is listening on \(path)")
        case ECONNREFUSED:
            logger.notice("removing stale control socket", metadata: ["path": "\(path)"])
            if unlink(path) != 0, errno != ENOENT {
                throw DaemonError(.socketInUse, "cannot remove stale socket \(path): \(String(cString: strerror(errno)))")
            }
        case let code:
            throw DaemonError(
                .socketInUse, "cannot check existing socket \(path): \(String(cString: strerror(code)))"
            )
        }
    }

    /// `connect`s to `path`: 0 when something accepts, otherwise the errno.
    static func probe(path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        guard var address = try? makeAddress(path) else { return ENAMETOOLONG }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                try? retryingInterrupts("connect(\(path))") { connect(fd, raw, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        return result == nil ? errno : 0
    }

    static func makeAddress(_ path: String) throws(DaemonError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw DaemonError(.invalidConfig, "socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        return address
    }

    /// Removes the socket file if it is still the one this daemon bound.
    public func unlinkIfOurs() {
        guard !adopted else { return }
        var info = stat()
        if stat(path, &info) == 0, info.st_ino == inode { unlink(path) }
    }

    static func lookupGroup(_ name: String) -> UInt32? {
        var group = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &group, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return group.gr_gid
    }
}
