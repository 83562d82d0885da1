#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

extension SpawnSupport {
    /// `EACCES` unless `path` is a regular file with an execute bit: checked before resolving an
    /// executable's libraries, so a non-executable file fails as an exec error (126), not as a
    /// library resolution error.
    static func checkRunnable(_ path: String, as spec: SandboxSpec) throws(SandboxError) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw SandboxError.exec(Errno(rawValue: errno), path: spec.executable.string) }
        guard info.st_mode & S_IFMT == S_IFREG, info.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH) != 0 else {
            throw SandboxError.exec(.permissionDenied, path: spec.executable.string)
        }
    }

    /// What `execve` by `uid`/`gid` (no supplementary groups, no capabilities) would say about the file
    /// at `path` from its permission bits: `nil` if executable, else the errno (`EACCES` for a directory
    /// or a missing x bit). The bubblewrap backend checks before bwrap runs, because bwrap reports an
    /// exec failure only as text.
    static func executeDenied(_ path: String, uid: UInt32, gid: UInt32) -> Errno? {
        var info = stat()
        guard stat(path, &info) == 0 else { return Errno(rawValue: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .permissionDenied }
        let bit: mode_t = info.st_uid == uid ? S_IXUSR : info.st_gid == gid ? S_IXGRP : S_IXOTH
        return info.st_mode & bit != 0 ? nil : .permissionDenied
    }
}
