#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// `make bench-hostile` (bench-daemon `--hostile`): issue #11's attacks by the hostile C runtime
/// against a real sandboxd, each beside the same window without the attack.
///
/// Per attack: daemon RSS before / peak (VmHWM, reset via clear_refs) / after the hostile runtime is
/// deleted; the RHP ping round trip (`rtt_us` of `POST /v1/runtimes/innocent/ping`) of an innocent
/// runtime, p50/p99, pinged back to back; lines the daemon wrote to its log (console target) and
/// its CPU, % of one core. The baseline is the same window with only the innocent runtime.
struct HostileBench {
    let bin: String
    let hostileRuntime: String
    let window: Int

    struct Figures {
        var rssBefore = 0, rssPeak = 0, rssAfter = 0
        var pings: [Double] = []
        var logLines = 0
        var cpu = 0.0
        var extra = ""

        func percentile(_ p: Double) -> Double {
            guard !pings.isEmpty else { return .nan }
            let sorted = pings.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
    }

    func run() throws {
        let directory = "/tmp/sbd-hostile-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/sandboxd.yaml"
        try Data("""
        socket: {path: \(directory)/s.sock, group: null}
        state_directory: \(directory)/state
        runtime_directory: \(directory)/rt
        log_level: warning
        """.utf8).write(to: URL(fileURLWithPath: config))
        let logPath = directory + "/daemon.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: bin + "/sandboxd")
        daemon.arguments = ["--config", config, "--log-target", "console"]
        daemon.standardError = log
        daemon.standardOutput = log
        try daemon.run()
        defer {
            daemon.terminate()
            daemon.waitUntilExit()
        }
        let client = BenchClient(socketPath: directory + "/s.sock")
        for _ in 0..<200 where client.request("GET", "/v1/health").0 != 200 { usleep(25_000) }
        let pid = daemon.processIdentifier
        var nextID = 1
        func provision(_ name: String, _ arguments: [String]) {
            defer { nextID += 1 }
            let id = String(format: "%064x", nextID)
            let args = arguments.map { "\"\($0)\"" }.joined(separator: ",")
            let body = #"{"name":"\#(name)","id":"\#(id)","executable":"\#(hostileRuntime)","args":[\#(args)],"sandbox":"namespaces"}"#
            let (status, text) = client.request("POST", "/v1/runtimes", body: body)
            if status / 100 != 2 { print("provision \(name): \(status) \(text)") }
        }
        func waitRunning(_ name: String) {
            for _ in 0..<400 {
                if client.request("GET", "/v1/runtimes/\(name)").1.contains(#""state":"running""#) { return }
                usleep(25_000)
            }
            print("warning: \(name) not running")
        }
        provision("innocent", ["normal"])
        waitRunning("innocent")

        /// One measured window; `attack` runs at its start, `cleanup` after it.
        func measure(attack: () -> Void, cleanup: () -> Void) -> Figures {
            var figures = Figures()
            figures.rssBefore = statusKiB(pid, "VmRSS")
            try? "5".write(toFile: "/proc/\(pid)/clear_refs", atomically: false, encoding: .utf8)
            let linesBefore = lineCount(logPath)
            let cpuBefore = cpuTicks(pid)
            let begin = ContinuousClock.now
            attack()
            while ContinuousClock.now - begin < .seconds(window) {
                let (status, body) = client.request("POST", "/v1/runtimes/innocent/ping")
                if status == 200, let range = body.range(of: #""rtt_us":"#) {
                    let digits = body[range.upperBound...].prefix { $0.isNumber }
                    if let micros = Double(digits) { figures.pings.append(micros / 1000) }
                } else {
                    figures.pings.append(5000)  // a failed ping counts as the watchdog's 5 s
                }
                usleep(20_000)
            }
            let elapsed = ContinuousClock.now - begin
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            figures.cpu = Double(cpuTicks(pid) - cpuBefore) / Double(sysconf(Int32(_SC_CLK_TCK))) / seconds * 100
            figures.rssPeak = statusKiB(pid, "VmHWM")
            figures.logLines = lineCount(logPath) - linesBefore
            cleanup()
            sleep(2)
            figures.rssAfter = statusKiB(pid, "VmRSS")
            return figures
        }

        let attacks: [(String, [String])] = [
            ("1 big-error (50 MB Error to the handshake, restarts)", ["big-error", "50"]),
            ("2 big-frame (60 MB frame, 10M-element array)", ["big-frame", "60"]),
            ("3 unsolicited (100,000 responses)", ["unsolicited", "100000"]),
            ("4 flood-output (write() loop of short lines)", ["flood-output"]),
        ]
        print("hostile-runtime bench: \(window) s windows, innocent runtime pinged back to back (RHP rtt via the API)")
        print("attack                                              |   RSS MiB before/peak/after |  ping p50/p99 ms | log lines | CPU % core")
        func row(_ label: String, _ f: Figures) {
            let rss = String(format: "%6.1f / %6.1f / %6.1f", Double(f.rssBefore) / 1024, Double(f.rssPeak) / 1024, Double(f.rssAfter) / 1024)
            let ping = String(format: "%6.2f / %6.2f", f.percentile(0.5), f.percentile(0.99))
            print("\(label.padding(toLength: 51, withPad: " ", startingAt: 0)) | \(rss) | \(ping) | \(String(format: "%9d", f.logLines)) | \(String(format: "%6.1f", f.cpu))\(f.extra)")
        }
        for (index, (label, arguments)) in attacks.enumerated() {
            let baseline = measure(attack: {}, cleanup: {})
            let name = "hostile-\(index)"
            var attacked = measure(attack: { provision(name, arguments) }, cleanup: {
                if index == 0 {
                    let list = client.request("GET", "/v1/runtimes").1.utf8.count
                    let events = client.request("GET", "/v1/events?follow=false").1.utf8.count
                    print("   GET /v1/runtimes \(list) bytes, GET /v1/events?follow=false \(events) bytes during attack 1")
                }
                _ = client.request("DELETE", "/v1/runtimes/\(name)")
            })
            attacked.extra = ""
            row("   without attack", baseline)
            row(label, attacked)
        }
    }

    func statusKiB(_ pid: Int32, _ field: String) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
        return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") ?? 0
    }

    func lineCount(_ path: String) -> Int {
        guard let data = FileManager.default.contents(atPath: path) else { return 0 }
        return data.reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
    }

    func cpuTicks(_ pid: Int32) -> Int {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        guard fields.count > 12 else { return 0 }
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }
}
