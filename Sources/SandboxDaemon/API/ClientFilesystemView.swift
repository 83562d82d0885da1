#if canImport(Glibc)
import Glibc
#endif
import CSandboxShim
import Foundation

/// Runs filesystem checks as a client would see the filesystem (issue #11, attack 8).
///
/// The daemon is root, so `stat`/`access` made for a client would tell a group member whether
/// `/root/.bashrc` exists. For a non-root peer the checks run on a throwaway thread that first takes the
/// peer's fsuid, fsgid and supplementary groups (``sbx_thread_fs_identity``, thread-local raw syscalls;
/// leaving fsuid 0 also drops the thread's filesystem capabilities), so they reveal nothing the client
/// could not find out itself. The thread exits after the checks, taking the identity with it. Privileged
/// peers (root, the daemon's uid) and in-process callers check directly, as before.
struct ClientFilesystemView: Sendable {
    struct Identity: Sendable, Equatable {
        var uid: UInt32
        var gid: UInt32
        var groups: [UInt32]
    }

    /// `nil`: check as the daemon itself.
    let identity: Identity?

    static let daemon = ClientFilesystemView(identity: nil)

    init(identity: Identity?) {
        self.identity = identity
    }

    /// The view of `peer` (`nil` or privileged: the daemon's own view).
    init(peer: PeerCredentials?) {
        guard let peer, !PeerPolicy.isPrivileged(peer.uid) else {
            self.identity = nil
            return
        }
        let groups = PeerPolicy.supplementaryGroups(pid: peer.pid)
            ?? PeerPolicy.groupsOfUser(uid: peer.uid, primary: peer.gid)
        self.identity = Identity(uid: peer.uid, gid: peer.gid, groups: groups.sorted())
    }

    /// Runs `body` with this view's identity; fails closed if the identity cannot be taken.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> Result<T, DaemonError>) async -> Result<T, DaemonError> {
        guard let identity else { return body() }
        return await withCheckedContinuation { continuation in
            let thread = Thread {
                let code = identity.groups.withUnsafeBufferPointer { groups in
                    sbx_thread_fs_identity(identity.uid, identity.gid, groups.baseAddress, groups.count)
                }
                guard code == 0 else {
                    continuation.resume(returning: .failure(DaemonError(
                        .internalError, "cannot take the client's identity for the spec checks (errno \(code))"
                    )))
                    return
                }
                continuation.resume(returning: body())
            }
            thread.name = "sandboxd-client-fs"
            thread.start()
        }
    }

    // MARK: - Checks (call inside `run`)

    /// `stat` with the thread's identity: `nil` and the errno when the path cannot be reached.
    static func status(_ path: String) -> (info: stat?, errno: Int32) {
        var info = stat()
        return stat(path, &info) == 0 ? (info, 0) : (nil, errno)
    }

    /// `faccessat2(AT_EACCESS)`: whether the thread's identity has `mode` on `path`.
    static func accessible(_ path: String, _ mode: Int32) -> Bool {
        sbx_access_fs_identity(path, mode) == 0
    }
}
