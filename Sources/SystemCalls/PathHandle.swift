#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import SystemPackage

/// `O_PATH` (Linux, every architecture Swift supports): Glibc's module map hides it (it needs `_GNU_SOURCE`).
public let openPathFlag: Int32 = 0o10_000_000
/// `AT_EMPTY_PATH` (Linux), hidden like ``openPathFlag``.
public let atEmptyPathFlag: Int32 = 0x1000

/// What a path handed to ``secureOwnership(of:expecting:owner:mode:)`` must be.
public enum ExpectedFileType: Sendable {
    case socket, directory

    var format: mode_t { self == .socket ? S_IFSOCK : S_IFDIR }
}

/// Sets owner and/or mode of the object at `path` without following a symlink in its last component.
///
/// `chown`/`chmod` by path follow a symlink swapped in after the object was created (a parent directory
/// writable by others would let anyone redirect them to `/etc/shadow`). This opens the name with
/// `O_PATH | O_NOFOLLOW`, checks with `fstat` that it is the expected kind of object, then changes exactly
/// that inode: `fchownat(fd, "", AT_EMPTY_PATH)`, and the mode through the descriptor's `/proc/self/fd`
/// link (the kernel resolves it to the inode, not the name; `fchmod` does not work on `O_PATH`
/// descriptors and glibc 2.36 has no `fchmodat2`).
public func secureOwnership(
    of path: String, expecting type: ExpectedFileType, owner: (uid: UInt32, gid: UInt32)? = nil, mode: UInt32? = nil
) throws(SystemCallError) {
    let fd = try retryingInterrupts("open(\(path), O_PATH|O_NOFOLLOW)") {
        open(path, openPathFlag | O_NOFOLLOW | O_CLOEXEC)
    }
    defer { close(fd) }
    var info = stat()
    try retryingInterrupts("fstat(\(path))") { fstat(fd, &info) }
    guard info.st_mode & S_IFMT == type.format else {
        let code = info.st_mode & S_IFMT == S_IFLNK ? ELOOP : (type == .socket ? ENOTSOCK : ENOTDIR)
        throw SystemCallError("fstat(\(path)): not a \(type)", errno: Errno(rawValue: code))
    }
    if let owner {
        try retryingInterrupts("fchownat(\(path), AT_EMPTY_PATH)") { fchownat(fd, "", owner.uid, owner.gid, atEmptyPathFlag) }
    }
    if let mode {
        try retryingInterrupts("chmod(/proc/self/fd of \(path))") { chmod("/proc/self/fd/\(fd)", mode_t(mode)) }
    }
}
