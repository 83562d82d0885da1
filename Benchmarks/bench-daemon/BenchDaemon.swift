#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Synchronization

/// `make bench-daemon`: the daemon's figures over its real API (not a test).
///
/// 1. provision → `started` event latency, `namespaces` vs `none`, same run (sandbox overhead);
/// 2. N runtimes provisioned at once: time until all run, daemon RSS per runtime;
/// 3. M idle runtimes: daemon CPU over a window.
@main
struct BenchDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-daemon", abstract: "Benchmark sandboxd over its API.")

    @Option(help: "Directory holding sandboxd and example-runtime.") var bin: String
    @Option(help: "Runtime executable for every phase (default: <bin>/example-runtime; e.g. .build/bench/minimal-runtime).")
    var runtime: String?
    @Option(help: "Latency samples per backend.") var samples = 20
    @Option(help: "Runtimes provisioned at once.") var burst = 500
    @Option(help: "Backend for the burst and idle phases.") var burstSandbox = "namespaces"
    @Option(help: "Idle runtimes for the CPU phase.") var idle = 100
    @Option(help: "CPU measurement window in seconds.") var window = 60
    @Option(help: "Run issue #11's hostile-runtime attacks with this runtime binary instead (make bench-hostile).")
    var hostile: String?
    @Option(help: "Seconds per hostile-bench window.") var hostileWindow = 10

    func run() throws {
        if let hostile {
            try HostileBench(bin: bin, hostileRuntime: hostile, window: hostileWindow).run()
            return
        }
        let directory = "/tmp/sbd-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/sandboxd.yaml"
        try Data("""
        socket: {path: \(directory)/s.sock, group: null}
        state_directory: \(directory)/state
        runtime_directory: \(directory)/rt
        log_level: error
        sandbox: {allow_none: true}
        api: {max_connections: 1024}
        """.utf8).write(to: URL(fileURLWithPath: config))
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: bin + "/sandboxd")
        daemon.arguments = ["--config", config]
        try daemon.run()
        defer {
            daemon.terminate()
            daemon.waitUntilExit()
        }
        let client = BenchClient(socketPath: directory + "/s.sock")
        for _ in 0..<200 where client.request("GET", "/v1/health").0 != 200 { usleep(25_000) }
        let pid = daemon.processIdentifier
        var nextID = 1
        let executable = runtime ?? bin + "/example-runtime"

        func spec(_ name: String, _ sandbox: String) -> String {
            defer { nextID += 1 }
            let id = String(format: "%064x", nextID)
            return #"{"name":"\#(name)","id":"\#(id)","executable":"\#(executable)","sandbox":"\#(sandbox)","mount_proc":true}"#
        }

        // 1. Latency, interleaved so both backends see the same machine state.
        var latencies: [String: [Double]] = ["namespaces": [], "none": []]
        for sample in 0..<samples {
            for sandbox in ["namespaces", "none"] {
                let name = "lat-\(sandbox)-\(sample)"
                let body = spec(name, sandbox)
                let started = Mutex<ContinuousClock.Instant?>(nil)
                let done = DispatchSemaphore(value: 0)
                Thread.detachNewThread {
                    client.follow { line in
                        if line.contains(#""runtime":"\#(name)""#), line.contains(#""type":"started""#) {
                            started.withLock { $0 = ContinuousClock.now }
                            return false
                        }
                        return true
                    }
                    done.signal()
                }
                usleep(50_000)  // the subscription is in place
                let begin = ContinuousClock.now
                _ = client.request("POST", "/v1/runtimes", body: body)
                if done.wait(timeout: .now() + 20) == .success, let end = started.withLock({ $0 }) {
                    let (seconds, attoseconds) = (end - begin).components
                    latencies[sandbox]!.append(Double(seconds) * 1000 + Double(attoseconds) / 1e15)
                }
                _ = client.request("DELETE", "/v1/runtimes/\(name)")
            }
        }
        func median(_ values: [Double]) -> Double { values.isEmpty ? .nan : values.sorted()[values.count / 2] }
        let ns = median(latencies["namespaces"]!), none = median(latencies["none"]!)
        print(String(format: "provision→started median: namespaces %.2f ms, none %.2f ms, sandbox overhead %.2f ms (goal ≤ 1.0 ms)", ns, none, ns - none))

        // 2. Burst.
        let baseRSS = rssKiB(pid)
        let baseUsed = hostUsedKiB()
        let baseKernel = kernelObjectsKiB()
        let begin = ContinuousClock.now
        let bodies = (0..<burst).map { spec("burst-\($0)", burstSandbox) }
        DispatchQueue.concurrentPerform(iterations: 16) { worker in
            for index in stride(from: worker, to: bodies.count, by: 16) {
                _ = client.request("POST", "/v1/runtimes", body: bodies[index])
            }
        }
        let answered = ContinuousClock.now - begin
        var running = 0
        while ContinuousClock.now - begin < .seconds(120) {
            let (_, body) = client.request("GET", "/v1/health")
            let health = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
            running = (health["runtimes"] as? [String: Int])?["running"] ?? 0
            if running >= burst { break }
            usleep(20_000)
        }
        let elapsed = ContinuousClock.now - begin
        let rss = rssKiB(pid)
        let used = hostUsedKiB()
        let kernel = kernelObjectsKiB()
        let name = (executable as NSString).lastPathComponent
        print("\(burst) runtimes (\(burstSandbox), \(name)) provisioned at once (16 clients): every request answered after \(answered), \(running) running after \(elapsed) (goal ≤ 3 s example-runtime, ≤ 1.5 s minimal-runtime)")
        print("daemon RSS \(baseRSS) KiB → \(rss) KiB: \((rss - baseRSS) / max(burst, 1)) KiB per runtime (goal ≤ 64 KiB)")
        // Host memory in use (MemTotal − MemAvailable: page tables, slab, sockets, namespaces included) and
        // what the runtimes' cgroups charge; other processes on the machine add noise to the first.
        let perSandbox = (used - baseUsed) / max(burst, 1)
        let charged = runtimeCgroupsKiB(pid).map { "\($0 / max(burst, 1)) KiB per runtime charged to the runtime cgroups" } ?? "no v1 memory cgroup"
        print("host memory in use +\(used - baseUsed) KiB: \(perSandbox) KiB per sandbox (goal ≤ 293 KiB = 300 kB); \(charged)")
        let deltas = zip(kernel, baseKernel).map { ($0 - $1) / max(burst, 1) }
        print("kernel objects per sandbox: \(deltas.reduce(0, +)) KiB (Slab \(deltas[0]), PageTables \(deltas[1]), KernelStack \(deltas[2]))")

        // 3. Idle CPU with `idle` runtimes.
        for index in idle..<burst { _ = client.request("DELETE", "/v1/runtimes/burst-\(index)") }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard window > 0 else { return }
        let cpuBefore = cpuTicks(pid)
        sleep(UInt32(window))
        let cpu = Double(cpuTicks(pid) - cpuBefore) / ticks / Double(window) * 100
        print(String(format: "%d idle runtimes: daemon CPU %.2f %% of a core over %d s (goal ≤ 0.5 %%)", min(idle, burst), cpu, window))
    }

    func rssKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// Kernel objects from /proc/meminfo (Slab + PageTables + KernelStack), KiB: what sandboxes cost the
    /// kernel (namespaces, mounts, sockets, tasks), less disturbed by other processes than MemAvailable.
    func kernelObjectsKiB() -> [Int] {
        let text = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        return ["Slab", "PageTables", "KernelStack"].map { key in
            let line = text.split(separator: "\n").first { $0.hasPrefix(key + ":") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
    }

    /// MemTotal − MemAvailable from /proc/meminfo, KiB.
    func hostUsedKiB() -> Int {
        let text = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        func field(_ key: String) -> Int {
            let line = text.split(separator: "\n").first { $0.hasPrefix(key + ":") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return field("MemTotal") - field("MemAvailable")
    }

    /// Memory charged to the daemon's runtime cgroups (v1 `memory.usage_in_bytes` of its group directory,
    /// hierarchical), KiB; nil without a v1 memory hierarchy.
    func runtimeCgroupsKiB(_ pid: Int32) -> Int? {
        let membership = (try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? ""
        guard let line = membership.split(separator: "\n").first(where: { $0.split(separator: ":").dropFirst().first?.split(separator: ",").contains("memory") ?? false }),
              let path = line.split(separator: ":", maxSplits: 2).last else { return nil }
        let own = "/sys/fs/cgroup/memory" + path
        let groups = ((try? FileManager.default.contentsOfDirectory(atPath: own)) ?? [])
            .filter { $0.hasPrefix("sandboxd-") && !$0.hasSuffix(".daemon") }
        guard !groups.isEmpty else { return nil }
        return groups.reduce(0) { total, group in
            let text = (try? String(contentsOfFile: "\(own)/\(group)/memory.usage_in_bytes", encoding: .utf8)) ?? "0"
            return total + (Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) / 1024
        }
    }

    func cpuTicks(_ pid: Int32) -> Int {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        // After the command: state(0) ppid(1) … utime(11) stime(12)
        guard fields.count > 12 else { return 0 }
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }
}
