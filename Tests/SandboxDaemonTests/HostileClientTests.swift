#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NIOCore
import NIOEmbedded
@testable import SandboxDaemon
import SystemCalls
import Testing
import TestSupport

/// Issue #11, client-facing attacks: existence oracle (8), connection caps (6), path swaps (10).
@Suite("Hostile clients")
struct HostileClientTests {
    static let nobody: UInt32 = 65534
    static var isRoot: Bool { geteuid() == 0 }

    /// A world-traversable directory with a root-only subdirectory `secret/` holding `present`.
    final class Layout {
        let directory = TemporaryDirectory()
        var secret: String { directory.path + "/secret" }
        var open: String { directory.path + "/open" }

        init() throws {
            chmod(directory.path, 0o755)
            for (path, mode) in [(secret, mode_t(0o700)), (open, 0o755)] {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
                chmod(path, mode)
            }
            for file in [secret + "/present", open + "/world", open + "/group-only", open + "/root-exec"] {
                _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
            }
            chmod(open + "/world", 0o755)
            chown(open + "/group-only", 0, 4242)
            chmod(open + "/group-only", 0o640)
            chmod(open + "/root-exec", 0o700)
        }
    }

    func validate(_ json: String, as peer: PeerCredentials?) async -> Result<RuntimeSpecification, DaemonError> {
        do {
            let value = try ControlAPI.decodeBody(Array(json.utf8))
            return .success(try await SpecValidator(defaultBackend: .namespaces).validate(value, as: peer))
        } catch {
            return .failure(error)
        }
    }

    static func bind(_ source: String) -> String {
        Specs.json(name: "b", executable: "/bin/true", extra: #","binds":[{"source":"\#(source)","target":"/x"}]"#)
    }

    /// pid 0: no /proc lookup, the group database gives the uid's groups.
    static let member = PeerCredentials(pid: 0, uid: nobody, gid: nobody)

    @Test("spec checks for a non-root client are no existence oracle", .enabled(if: isRoot))
    func noExistenceOracle() async throws {
        let layout = try Layout()
        // Root sees the difference, as before.
        if case .failure(let error) = await validate(Self.bind(layout.secret + "/present"), as: nil) {
            Issue.record("root: an existing bind source was refused: \(error)")
        }
        let missingAsRoot = await validate(Self.bind(layout.secret + "/missing"), as: nil)
        #expect(missingAsRoot.error?.message.contains("does not exist") == true)

        // A group member gets the same answer for an existing and a missing file it cannot reach.
        let present = await validate(Self.bind(layout.secret + "/present"), as: Self.member)
        let missing = await validate(Self.bind(layout.secret + "/missing"), as: Self.member)
        #expect(present.error?.field == "binds[0].source")
        #expect(missing.error?.field == "binds[0].source")
        #expect(present.error?.message.replacingOccurrences(of: "present", with: "X")
            == missing.error?.message.replacingOccurrences(of: "missing", with: "X"))
        #expect(present.error?.message.contains("not accessible") == true)

        // What the client can see itself is still answered precisely.
        #expect(await validate(Self.bind(layout.open + "/world"), as: Self.member).error == nil)
        #expect(await validate(Self.bind(layout.open + "/missing"), as: Self.member).error?.message.contains("does not exist") == true)
    }

    @Test("the executable is checked with the client's identity, groups included", .enabled(if: isRoot))
    func executableAsClient() async throws {
        let layout = try Layout()
        let rootOnly = Specs.json(name: "e", executable: layout.open + "/root-exec")
        #expect(await validate(rootOnly, as: nil).error == nil)
        #expect(await validate(rootOnly, as: Self.member).error?.field == "executable")
        let hidden = Specs.json(name: "e", executable: layout.secret + "/present")
        #expect(await validate(hidden, as: Self.member).error?.message.contains("not accessible") == true)
        #expect(await validate(Specs.json(name: "e", executable: layout.open + "/world"), as: Self.member).error == nil)

        // Group permissions count: the primary gid, and the supplementary groups taken from the peer.
        let groupBind = Self.bind(layout.open + "/group-only")
        #expect(await validate(groupBind, as: PeerCredentials(pid: 0, uid: Self.nobody, gid: 4242)).error == nil)
        let groupOnly = layout.open + "/group-only"
        let viaGroups = ClientFilesystemView(identity: .init(uid: Self.nobody, gid: Self.nobody, groups: [4242]))
        let readable = await viaGroups.run { () -> Result<Bool, DaemonError> in
            .success(ClientFilesystemView.accessible(groupOnly, R_OK))
        }
        #expect((try? readable.get()) == true)
        let stranger = ClientFilesystemView(identity: .init(uid: Self.nobody, gid: Self.nobody, groups: []))
        let refused = await stranger.run { () -> Result<Bool, DaemonError> in
            .success(ClientFilesystemView.accessible(groupOnly, R_OK))
        }
        #expect((try? refused.get()) == false)
        // The identity stays on its throwaway thread: this task still sees everything.
        #expect(access(layout.secret + "/present", R_OK) == 0)
    }

    @Test("paths are checked as bytes: a combining mark cannot hide a separator or a '..' component")
    func pathsAsBytes() async throws {
        let hidden = Self.bind("/etc/hostname").replacingOccurrences(of: #""target":"/x""#, with: #""target":"/a/../\u0301b""#)
        #expect(await validate(hidden, as: nil).error?.field == "binds[0].target")
        let joined = Specs.json(name: "e", executable: "/\u{1F3FB}missing")
        let error = await validate(joined, as: nil).error
        #expect(error?.field == "executable")
        #expect(error?.message.contains("does not exist") == true, "\(String(describing: error))")
    }

    // MARK: - Connection caps (attack 6)

    func limits(total: Int = 10, reserved: Int = 3, perUID: Int = 4, streams: Int = 2, streamsPerUID: Int = 1) -> APILimits {
        var limits = APILimits()
        limits.maxConnections = total
        limits.rootReservedConnections = reserved
        limits.maxConnectionsPerUID = perUID
        limits.maxEventStreams = streams
        limits.maxEventStreamsPerUID = streamsPerUID
        return limits
    }

    @Test("one uid cannot take every connection, root keeps reserved slots")
    func perUIDAndRootSlots() throws {
        let tracker = ConnectionTracker(limits: limits(), isPrivileged: { $0 == 0 })
        var channels: [EmbeddedChannel] = []
        func admit(_ uid: UInt32?) -> ConnectionTracker.Refusal? {
            let channel = EmbeddedChannel()
            channels.append(channel)
            return tracker.admit(channel, uid: uid)
        }
        // Peers outside the group take no slot while they wait for their 403.
        let strangers = (0..<20).map { _ in EmbeddedChannel() }
        for channel in strangers { #expect(tracker.admit(channel, uid: 4000, forbidden: true) == .forbidden) }
        #expect(tracker.refusedCount == 20)
        // uid 1000 floods: 4 get in, the rest are refused per uid (a refused connection is closed at once).
        for _ in 0..<4 { #expect(admit(1000) == nil) }
        for _ in 0..<10 {
            #expect(admit(1000) == .perUID)
            _ = try channels.removeLast().finish()
        }
        #expect(tracker.count == 24)
        // Other members fill the shared slots (10 - 3 reserved = 7).
        for uid: UInt32 in 1001...1003 { #expect(admit(uid) == nil) }
        #expect(admit(1004) == .total)
        // Root still gets in, up to the total (members' refused connections take no slot).
        for _ in 0..<3 { #expect(admit(0) == nil) }
        #expect(admit(0) == .total)
        #expect(tracker.refusedCount == 22)
        for channel in channels + strangers { _ = try? channel.finish() }
        #expect(tracker.count == 0 && tracker.refusedCount == 0)
    }

    @Test("events streams have their own caps, root is exempt")
    func streamCaps() throws {
        let tracker = ConnectionTracker(limits: limits(), isPrivileged: { $0 == 0 })
        let channels = (0..<5).map { _ in EmbeddedChannel() }
        #expect(tracker.admit(channels[0], uid: 1000) == nil)
        #expect(tracker.admit(channels[1], uid: 1000) == nil)
        #expect(tracker.admit(channels[2], uid: 1001) == nil)
        #expect(tracker.admit(channels[3], uid: 1002) == nil)
        #expect(tracker.admit(channels[4], uid: 0) == nil)
        #expect(tracker.beginStream(channels[0]) == nil)
        #expect(tracker.beginStream(channels[1]) == .streamsPerUID)
        #expect(tracker.beginStream(channels[2]) == nil)
        #expect(tracker.beginStream(channels[3]) == .streams)
        #expect(tracker.beginStream(channels[4]) == nil)
        #expect(tracker.streamCount == 2, "root's stream is not counted")
        _ = try channels[0].finish()
        #expect(tracker.streamCount == 1)
        #expect(tracker.beginStream(channels[3]) == nil)
        for channel in channels.dropFirst() { _ = try? channel.finish() }
        #expect(tracker.streamCount == 0 && tracker.count == 0)
    }

    @Test("root is never locked out by a member's events streams (over the real socket)", .enabled(if: isRoot))
    func rootNotLockedOut() async throws {
        let daemon = try await TestDaemon {
            $0.api.maxConnections = 4
            $0.api.rootReservedConnections = 2
        }
        let socketPath = daemon.socketPath
        // Root's own streams and connections count; root may use all 4 slots, then 503.
        let held = await TestHTTP.offPool { (0..<4).map { _ in TestHTTP.connect(socketPath) } }
        // Refused once the server has accepted all four; served again once it saw them close.
        let refused = await polled { await daemon.request("GET", "/v1/health") } until: { $0.status == 503 }
        #expect(refused.status == 503 && refused.errorCode == "too_many_connections")
        for fd in held { close(fd) }
        let answer = await polled(within: .seconds(10), every: .milliseconds(20)) { await daemon.request("GET", "/v1/health") } until: {
            $0.status == 200
        }
        #expect(answer.status == 200)
        try await daemon.stop()
    }

    // MARK: - Path swaps (attack 10)

    @Test("ownership and mode are never applied through a swapped-in symlink", .enabled(if: isRoot))
    func noSymlinkFollow() throws {
        let directory = TemporaryDirectory()
        let victim = directory.path + "/victim"
        _ = FileManager.default.createFile(atPath: victim, contents: Data("secret".utf8))
        chmod(victim, 0o600)
        let link = directory.path + "/s.sock"
        symlink(victim, link)
        #expect(throws: SystemCallError.self) {
            try secureOwnership(of: link, expecting: .socket, owner: (0, 4242), mode: 0o666)
        }
        #expect(throws: SystemCallError.self) {
            try secureOwnership(of: link, expecting: .directory, mode: 0o777)
        }
        var info = stat()
        #expect(stat(victim, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(info.st_gid == 0)

        // A real socket gets its owner and mode.
        let socketPath = directory.path + "/real.sock"
        _ = try ControlSocket.bind(path: socketPath, group: nil, logger: Logger(label: "t"))
        #expect(lstat(socketPath, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        try secureOwnership(of: socketPath, expecting: .socket, owner: (0, 4242), mode: 0o660)
        #expect(lstat(socketPath, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o660 && info.st_gid == 4242)
    }
}

extension Result {
    var error: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
