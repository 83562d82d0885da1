#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
@testable import SandboxDaemon
import Testing

@Suite("Control socket and peer credentials", .serialized, .timeLimit(.minutes(2)))
struct SocketTests {
    let logger = Logger(label: "test")

    @Test("a stale socket file (nobody listening) is replaced")
    func staleSocket() throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/stale.sock"
        // Bind without listening and close: connect now gets ECONNREFUSED.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = try ControlSocket.makeAddress(path)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        close(fd)
        #expect(ControlSocket.probe(path: path) == ECONNREFUSED)

        let bound = try ControlSocket.bind(path: path, group: nil, logger: logger)
        defer { close(bound.descriptor) }
        #expect(ControlSocket.probe(path: path) == 0)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
    }

    @Test("a live daemon's socket is never stolen")
    func liveSocket() throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/live.sock"
        let first = try ControlSocket.bind(path: path, group: nil, logger: logger)
        defer { close(first.descriptor) }
        #expect {
            _ = try ControlSocket.bind(path: path, group: nil, logger: logger)
        } throws: { ($0 as? DaemonError)?.code == .socketInUse }
        #expect(ControlSocket.probe(path: path) == 0)  // still the first one's
    }

    @Test("a path that is not a socket is never removed")
    func notASocket() throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/file"
        _ = FileManager.default.createFile(atPath: path, contents: Data("keep".utf8))
        #expect(throws: DaemonError.self) { _ = try ControlSocket.bind(path: path, group: nil, logger: logger) }
        #expect(FileManager.default.contents(atPath: path) == Data("keep".utf8))
    }

    @Test("with an existing group: mode 0660, owned by root:group")
    func groupSocket() throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/g.sock"
        let bound = try ControlSocket.bind(path: path, group: "root", logger: logger)
        defer { close(bound.descriptor) }
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o660 && info.st_gid == 0)
        #expect(bound.groupID == 0)
        #expect(try ControlSocket.bind(path: directory.path + "/n.sock", group: "no-such-group-sbd", logger: logger).groupID == nil)
    }

    @Test("peer policy: root, own uid and group members only")
    func policy() {
        let policy = PeerPolicy(groupID: 4242)
        #expect(policy.allows(PeerCredentials(pid: 0, uid: 0, gid: 0)))
        #expect(policy.allows(PeerCredentials(pid: 0, uid: 65534, gid: 4242)))
        #expect(!policy.allows(PeerCredentials(pid: 0, uid: 65534, gid: 65534)))
        #expect(!PeerPolicy(groupID: nil).allows(PeerCredentials(pid: 0, uid: 65534, gid: 65534)))
        // Supplementary groups come from /proc/<pid>/status.
        let own = PeerPolicy.supplementaryGroups(pid: getpid())
        #expect(own != nil)
    }

    /// Runs curl as `nobody` (uid 65534) with the given supplementary groups against the socket.
    static func curlAsNobody(_ socketPath: String, groups: [UInt32]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        var arguments = ["--reuid=65534", "--regid=65534"]
        arguments += groups.isEmpty ? ["--clear-groups"] : ["--groups=" + groups.map(String.init).joined(separator: ",")]
        arguments += ["/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--unix-socket", socketPath, "http://localhost/v1/health"]
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static var haveTools: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")
            && getuid() == 0
    }

    @Test("a peer that is neither root nor in the group gets 403; a group member is served", .enabled(if: haveTools))
    func peerRefusal() async throws {
        let group = "sbdtest\(getpid())"
        let clock = ContinuousClock()
        let before = clock.now
        let added = await TestHTTP.offPool { Process.runQuietly("/usr/sbin/groupadd", [group]) }
        defer { if added { _ = Process.runQuietly("/usr/sbin/groupdel", [group]) } }
        let gid = ControlSocket.lookupGroup(group)
        let groupaddTook = clock.now - before
        #expect(groupaddTook < .seconds(5), "groupadd took \(groupaddTook)")

        let daemon = try await TestDaemon { $0.socketGroup = added ? group : nil }
        // Let the unprivileged peer reach the socket file, so the SO_PEERCRED check is what decides.
        chmod(daemon.directory.path, 0o755)
        chmod(daemon.socketPath, 0o666)

        let refused = await TestHTTP.offPool { try? Self.curlAsNobody(daemon.socketPath, groups: []) }
        let (status, output) = try #require(refused)
        #expect(status == 0)
        #expect(output.hasSuffix("\n403"), "\(output)")
        #expect(output.contains("peer_forbidden"))

        if let gid {
            let member = try #require(await TestHTTP.offPool { try? Self.curlAsNobody(daemon.socketPath, groups: [gid]) })
            #expect(member.output.hasSuffix("\n200"), "\(member.output)")
        }
        // The daemon keeps serving root.
        #expect(await daemon.request("GET", "/v1/health").status == 200)
        try await daemon.stop()
    }
}

extension Process {
    /// Runs a command, discarding output; `true` when it exited 0.
    static func runQuietly(_ path: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}
