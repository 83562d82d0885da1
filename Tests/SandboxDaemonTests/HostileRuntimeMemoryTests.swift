#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TestSupport
import Testing

/// A runtime's 60 MB frame against the real `sandboxd` process, whose peak RSS (VmHWM) belongs to it
/// alone: measured in the test process, any suite running alongside would count too.
@Suite("hostile runtime memory, daemon process", .serialized, .timeLimit(.minutes(2)),
       .enabled(if: TestEnvironment.isRoot, "SKIPPED: sandboxes need root"),
       .enabled(if: DaemonProcessTests.binary != nil, "SKIPPED: the sandboxd binary is not built"),
       .enabled(if: HostileRuntime.available, Comment(rawValue: HostileRuntime.unavailableReason)))
struct HostileRuntimeMemoryTests {
    static func status(_ pid: Int32, _ field: String) throws -> Int {
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix(field + ":") }, "no \(field) for \(pid)")
        let kilobytes = try #require(line.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) })
        return kilobytes * 1024
    }

    @Test("a 60 MB frame of 10M-element arrays: the daemon's RSS rises ≤ 2× the frame; the runtime keeps running")
    func hugeFrame() async throws {
        let directory = TemporaryDirectory()
        let daemon = try await DaemonProcessTests.launch(directory)
        defer { if daemon.isRunning { daemon.terminate() } }
        let socket = directory.path + "/d.sock"
        let pid = daemon.processIdentifier
        let frameBytes = 60 << 20

        let before = try Self.status(pid, "VmRSS")
        try "5".write(toFile: "/proc/\(pid)/clear_refs", atomically: false, encoding: .utf8)  // VmHWM := VmRSS
        let executable = try HostileRuntime.built.get()
        let spec = """
        {"name":"bigframe","id":"\(Specs.id(60))","executable":"\(executable)","args":["big-frame","60"],"sandbox":"namespaces"}
        """
        let created = await TestHTTP.request(socket, "POST", "/v1/runtimes", body: spec)
        #expect(created.status == 201, "\(created.body)")
        // The runtime sends the frame right after its handshake and reads the ping only after it, so a
        // ping answered means the whole frame was taken in (and dropped).
        let pinged = await polled(within: .seconds(60), every: .milliseconds(50)) {
            await TestHTTP.request(socket, "POST", "/v1/runtimes/bigframe/ping")
        } until: { $0.status == 200 }
        #expect(pinged.status == 200, "\(pinged.body)")
        let peak = try Self.status(pid, "VmHWM")
        print("hostile big-frame in sandboxd: RSS before \(before >> 20) MiB, peak \(peak >> 20) MiB")
        #expect(peak - before <= 2 * frameBytes, "RSS rose \((peak - before) >> 20) MiB for a \(frameBytes >> 20) MiB frame")

        let state = await TestHTTP.request(socket, "GET", "/v1/runtimes/bigframe")
        #expect(state.json["state"] as? String == "running", "\(state.body)")
        #expect(state.json["restarts"] as? Int == 0, "the connection survived the frame: \(state.body)")
        daemon.terminate()
        #expect(await DaemonProcessTests.wait(daemon) == 0)
    }
}
