#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The kernel-reported identity of the process on the other end of a UNIX socket (`SO_PEERCRED`).
///
/// Laid out exactly like the kernel's `struct ucred` so it can be read with `getsockopt` directly.
public struct PeerCredentials: Sendable, Hashable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "pid \(pid) uid \(uid) gid \(gid)" }
}

/// Who may talk to the control socket: root, the daemon's own uid, and members of the socket group.
public struct PeerPolicy: Sendable {
    /// The configured group (`nil` when it does not exist: root only).
    public var groupID: UInt32?

    public init(groupID: UInt32?) {
        self.groupID = groupID
    }

    /// Root and the daemon's own uid: exempt from per-uid caps, may use the reserved connection slots.
    public static func isPrivileged(_ uid: UInt32) -> Bool { uid == 0 || uid == geteuid() }

    public func allows(_ peer: PeerCredentials) -> Bool {
        if Self.isPrivileged(peer.uid) { return true }
        guard let groupID else { return false }
        if peer.gid == groupID { return true }
        if let groups = Self.supplementaryGroups(pid: peer.pid) { return groups.contains(groupID) }
        return Self.groupsOfUser(uid: peer.uid, primary: peer.gid).contains(groupID)
    }

    /// The `Groups:` line of `/proc/<pid>/status` (the peer's actual supplementary groups).
    static func supplementaryGroups(pid: Int32) -> Set<gid_t>? {
        guard pid > 0, let data = FileManager.default.contents(atPath: "/proc/\(pid)/status"),
              let text = String(data: data, encoding: .utf8)
        else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Groups:") {
            return Set(line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" })
                .compactMap { gid_t($0) })
        }
        return nil
    }

    /// Fallback when the peer already exited: the group database's view of its uid.
    static func groupsOfUser(uid: UInt32, primary: UInt32) -> Set<gid_t> {
        var password = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(uid, &password, &buffer, buffer.count, &result) == 0, result != nil,
              let name = password.pw_name
        else { return [] }
        var count: Int32 = 256
        var groups = [gid_t](repeating: 0, count: Int(count))
        guard getgrouplist(name, primary, &groups, &count) >= 0 else { return [] }
        return Set(groups.prefix(Int(count)))
    }
}
