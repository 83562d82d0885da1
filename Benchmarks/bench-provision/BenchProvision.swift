import ArgumentParser
import Foundation
import Logging
import RuntimeHostProtocol
import RuntimeProvisioner
import Sandbox

/// `make bench-provision`: time from `newRuntime` + `start` to the `started` event, per backend, and the
/// `call(ping)` round trip through a running ``Runtime`` — all in one run, so the ratios are comparable.
@main
struct BenchProvision: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-provision",
        abstract: "Provisioning latency per sandbox backend, and ping round trips through the provisioner."
    )

    @Option(help: "Start→Started samples per backend.")
    var starts = 100

    @Option(help: "Ping round trips through the runtime.")
    var pings = 5_000

    @Option(help: "The example runtime (default: next to this binary).")
    var runtime: String?

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .critical
            return handler
        }
        let executable = runtime ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("example-runtime").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ValidationError("example runtime not found at \(executable); build it or pass --runtime")
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bench-provision-\(getpid())")
        defer { try? FileManager.default.removeItem(at: root) }

        var backends: [SandboxBackendKind] = [.none, .namespaces]
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") { backends.append(.bubblewrap) }

        print("bench-provision: \(starts) starts per backend, \(pings) pings; example runtime \(executable)")
        print("")
        print("backend       median_ms    p99_ms")
        var medians: [SandboxBackendKind: Double] = [:]
        for backend in backends {
            let provisioner = try makeProvisioner(backend: backend, root: root)
            var samples: [Duration] = []
            for index in 0..<starts {
                samples.append(try await startToStarted(provisioner, executable: executable, index: index))
            }
            let stats = Stats(samples)
            medians[backend] = stats.median
            print(pad(backend.rawValue, 12), pad(format(stats.median), 10), pad(format(stats.p99), 9))
        }
        // "with limits": the same starts with one cgroup per runtime and the daemon's default limits.
        let cgroups = CgroupHost.detect(groupName: "sandboxd-bench-\(getpid())", logger: Logger(label: "bench"))
        defer { for directory in cgroups.groupDirectories { rmdir(directory.string) } }
        var limits = ResourceLimits(tmpfsBytes: 64 << 20, openFiles: 4096)
        if cgroups.supports(.memory) { limits.memoryBytes = 1 << 30 }
        if cgroups.supports(.pids) { limits.pids = 256 }
        if cgroups.supports(.cpu) {
            limits.cpuPercent = 100
            limits.cpuWeight = 100
        }
        var limitedMedian: Double?
        for backend in [SandboxBackendKind.none, .namespaces] {
            let provisioner = try makeProvisioner(backend: backend, root: root, cgroups: cgroups)
            var samples: [Duration] = []
            for index in 0..<starts {
                var limited = limits
                if backend == .none { limited.tmpfsBytes = nil }
                samples.append(try await startToStarted(provisioner, executable: executable, index: index, limits: limited))
            }
            let stats = Stats(samples)
            if backend == .namespaces { limitedMedian = stats.median }
            print(pad(backend.rawValue + "+limits", 12), pad(format(stats.median), 10), pad(format(stats.p99), 9))
        }
        let available = cgroups.status.available.map(\.rawValue).sorted().joined(separator: ",")
        print("limits: cgroup \(cgroups.status.version?.rawValue ?? "none") [\(available)]")

        // Interleaved sample by sample (the machine's load drifts between sequential rows): namespaces,
        // namespaces+limits with the daemon's cgroup pool (as sandboxd runs), and without it.
        let pooled = CgroupHost.detect(
            groupName: "sandboxd-bench-pool-\(getpid())", logger: Logger(label: "bench"), poolSize: 2)
        defer {
            pooled.removeGroupDirectories()
        }
        let interleaved: [(String, Provisioner, ResourceLimits)] = [
            ("namespaces", try makeProvisioner(backend: .namespaces, root: root), ResourceLimits()),
            ("ns+limits", try makeProvisioner(backend: .namespaces, root: root, cgroups: pooled), limits),
            ("ns+lim-nopool", try makeProvisioner(backend: .namespaces, root: root, cgroups: cgroups), limits),
        ]
        var rows: [[Duration]] = Array(repeating: [], count: interleaved.count)
        for index in 0..<starts {
            // The order rotates, so no row always follows the same one (a netns torn down just before
            // costs the next start).
            for offset in 0..<interleaved.count {
                let row = (index + offset) % interleaved.count
                let (_, provisioner, rowLimits) = interleaved[row]
                rows[row].append(try await startToStarted(provisioner, executable: executable, index: index, limits: rowLimits))
            }
        }
        for (row, (name, _, _)) in interleaved.enumerated() {
            let stats = Stats(rows[row])
            print(pad(name + "|i", 12), pad(format(stats.median), 10), pad(format(stats.p99), 9))
        }
        let plain = Stats(rows[0]).median, withPool = Stats(rows[1]).median, withoutPool = Stats(rows[2]).median
        let pairs = zip(rows[1], rows[0]).map { $0 - $1 }
        print("interleaved: namespaces+limits (pooled) − namespaces: \(format(withPool - plain)) ms, \(format(withPool / plain))× "
            + "(median of per-pair differences \(format(Stats(pairs).median)) ms); without the pool \(format(withoutPool - plain)) ms")

        let provisioner = try makeProvisioner(backend: .namespaces, root: root)
        let runtime = provisioner.newRuntime(spec(executable: executable, name: "ping"))
        let events = runtime.events()
        runtime.start()
        for await event in events { if case .started = event { break } }
        var rtts: [Duration] = []
        let clock = ContinuousClock()
        for _ in 0..<pings {
            let started = clock.now
            _ = try await runtime.call(.runtimePingRequest, timeout: .seconds(5))
            rtts.append(clock.now - started)
        }
        await runtime.stop()
        let ping = Stats(rtts)

        print("")
        print("call(ping) through Runtime (namespaces): median \(format(ping.median * 1000)) µs, p99 \(format(ping.p99 * 1000)) µs")
        if let none = medians[.none], let namespaces = medians[.namespaces] {
            print("sandbox overhead (namespaces − none): \(format(namespaces - none)) ms (goal ≤ 1.0 ms)")
        }
        if let namespaces = medians[.namespaces], let bubblewrap = medians[.bubblewrap] {
            print("bubblewrap / namespaces: \(format(bubblewrap / namespaces))× (goal ≥ 2×)")
        }
        if let namespaces = medians[.namespaces], let limitedMedian {
            print("namespaces+limits − namespaces: \(format(limitedMedian - namespaces)) ms, \(format(limitedMedian / namespaces))×")
        }
    }

    private func makeProvisioner(backend: SandboxBackendKind, root: URL, cgroups: CgroupHost? = nil) throws -> Provisioner {
        var configuration = ProvisionerConfiguration(
            hostInfo: HostInfo(consensusChainContext: String(repeating: "ab", count: 32)))
        configuration.defaultBackend = backend
        configuration.runtimeDirectory = .init(root.path)
        configuration.hostIDs = HostIDRange(base: 500_000, count: 10_000)
        configuration.cgroups = cgroups
        return try Provisioner(configuration: configuration)
    }

    private func spec(executable: String, name: String, limits: ResourceLimits = ResourceLimits()) -> RuntimeSpec {
        RuntimeSpec(
            id: try! Namespace(hex: "8000000000000000000000000000000000000000000000000000000000000001"),
            name: name,
            executable: .init(executable),
            mountProc: true,
            limits: limits
        )
    }

    /// One sample: a fresh runtime from `newRuntime` to its `started` event; stopped outside the timing.
    private func startToStarted(
        _ provisioner: Provisioner, executable: String, index: Int, limits: ResourceLimits = ResourceLimits()
    ) async throws -> Duration {
        let clock = ContinuousClock()
        let began = clock.now
        let runtime = provisioner.newRuntime(spec(executable: executable, name: "bench\(index)", limits: limits))
        let events = runtime.events()
        runtime.start()
        var elapsed: Duration?
        for await event in events {
            switch event {
            case .started: elapsed = clock.now - began
            case .failedToStart(let error, _, _): throw ValidationError("start failed: \(error)")
            default: continue
            }
            break
        }
        await runtime.stop()
        guard let elapsed else { throw ValidationError("no started event") }
        return elapsed
    }
}

/// Median and 99th percentile in milliseconds.
struct Stats {
    let median: Double
    let p99: Double

    init(_ samples: [Duration]) {
        let sorted = samples.map { Double($0.components.attoseconds) / 1e15 + Double($0.components.seconds) * 1e3 }.sorted()
        median = sorted[sorted.count / 2]
        p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
    }
}

func format(_ value: Double) -> String { String(format: "%.3f", value) }
func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
