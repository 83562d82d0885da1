#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SystemdSupport
import Testing

extension SystemdIntegrationTests {
    /// Socket activation through the real `systemd-socket-activate`, which passes `LISTEN_FDS`/`LISTEN_FDNAMES`.
    @Suite(
        "Socket activation",
        .enabled(if: Host.probe != nil, "the systemd-probe helper is not built"),
        .enabled(if: Host.executable(Host.socketActivate), "systemd-socket-activate is missing (apt package systemd)"),
        .timeLimit(.minutes(1))
    )
    struct SocketActivationTests {
        @Test(.timeLimit(.minutes(1)))
        func adoptsTheListeningControlSocketAndNeverUnlinksIt() async throws {
            let directory = try Host.temporaryDirectory("activate")
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = directory.appendingPathComponent("control.sock").path
            async let activated = runCommand(
                Host.socketActivate, ["-l", path, "--fdname=control", Host.probe!, "listen-control"],
                environment: childEnvironment([:])
            )
            let reply = try await offloaded { try Self.connectAndRead(path) }
            let result = try await activated
            #expect(reply == "ok\n")
            #expect(result.stdout.contains("result=fd:3"), "\(result.stdout) \(result.stderr)")
            #expect(FileManager.default.fileExists(atPath: path), "the passed socket's path must stay")
        }

        @Test(.timeLimit(.minutes(1)))
        func aDatagramSocketIsRejected() async throws {
            let directory = try Host.temporaryDirectory("activate-dgram")
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = directory.appendingPathComponent("control.sock").path
            async let activated = runCommand(
                Host.socketActivate, ["--datagram", "-l", path, "--fdname=control", Host.probe!, "listen-control"],
                environment: childEnvironment([:])
            )
            try await offloaded { try Self.sendDatagram(path) }
            let result = try await activated
            #expect(result.stdout.contains("result=error:systemd.unexpected_socket"), "\(result.stdout) \(result.stderr)")
        }

        @Test func otherNamesAreIgnored() async throws {
            let directory = try Host.temporaryDirectory("activate-name")
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = directory.appendingPathComponent("other.sock").path
            async let activated = runCommand(
                Host.socketActivate, ["-l", path, "--fdname=metrics", Host.probe!, "listen-control"],
                environment: childEnvironment([:])
            )
            _ = try? await offloaded { try Self.connectAndRead(path) }
            let result = try await activated
            #expect(result.stdout.contains("result=none"), "\(result.stdout) \(result.stderr)")
        }

        @Test func withoutSocketActivationThereIsNoControlSocket() async throws {
            let result = try await runCommand(Host.probe!, ["listen-control"], environment: childEnvironment([:]))
            #expect(result.stdout.contains("result=none"))
        }

        @Test func aRegularFileIsNotAListeningSocket() throws {
            let fd = open("/dev/null", O_RDONLY)
            defer { close(fd) }
            #expect(throws: SystemdError.self) { try SocketActivation.verifyListeningUnixStream(fd) }
        }

        // MARK: Helpers

        private static func address(_ path: String) -> sockaddr_un {
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
            return address
        }

        /// Connects (retrying while systemd-socket-activate starts up) and reads until EOF.
        private static func connectAndRead(_ path: String) throws -> String {
            let deadline = ContinuousClock.now + .seconds(10)
            while true {
                let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
                var address = address(path)
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
                if connected == 0 {
                    defer { close(fd) }
                    var reply: [UInt8] = []
                    var buffer = [UInt8](repeating: 0, count: 64)
                    while true {
                        let count = read(fd, &buffer, buffer.count)
                        if count <= 0 { break }
                        reply += buffer.prefix(count)
                    }
                    return String(decoding: reply, as: UTF8.self)
                }
                close(fd)
                guard ContinuousClock.now < deadline else { throw TestFailure("cannot connect to \(path): errno \(errno)") }
                usleep(20_000)
            }
        }

        private static func sendDatagram(_ path: String) throws {
            let deadline = ContinuousClock.now + .seconds(10)
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(fd) }
            var address = address(path)
            while true {
                let sent = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, "x", 1, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
                if sent == 1 { return }
                guard ContinuousClock.now < deadline else { throw TestFailure("cannot send to \(path): errno \(errno)") }
                usleep(20_000)
            }
        }
    }
}
