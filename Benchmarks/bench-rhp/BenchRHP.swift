import ArgumentParser
import Logging
import RuntimeHostProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// RHP ping latency and pipelined throughput between two processes, next to a raw C ping-pong.
@main
struct BenchRHP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-rhp",
        abstract: "Benchmarks RHP calls between two processes against a raw C ping-pong of the same frame size.",
        subcommands: [All.self, Measure.self, Guest.self, MetricsOverhead.self, CallBench.self],
        defaultSubcommand: All.self
    )
}

/// How many measurements each run makes.
struct Sizes: ParsableArguments {
    @Option(help: "Sequential pings measured per latency run.")
    var pings = 20_000

    @Option(help: "Calls per throughput run.")
    var calls = 200_000

    @Option(help: "Calls in flight during throughput runs.")
    var outstanding = 64
}

extension BenchRHP {
    /// Runs the C baseline and the RHP measurement for each CPU placement and prints the table.
    struct All: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "all", abstract: "Run the whole benchmark (default).")

        @OptionGroup var sizes: Sizes

        @Option(help: "The compiled bench/rhp-pingpong.c (default: rhp-pingpong next to this binary).")
        var baseline: String?

        func run() async throws {
            let executable = Processes.ownExecutable()
            let directory = executable.split(separator: "/").dropLast().joined(separator: "/")
            let baselinePath = baseline ?? "/\(directory)/rhp-pingpong"
            let counts = [String(sizes.pings), String(sizes.calls), String(sizes.outstanding)]
            print("bench-rhp: \(sizes.pings) sequential pings (45-byte frames), \(sizes.calls) calls with \(sizes.outstanding) in flight; host and guest are separate processes on a UNIX socket")
            var sections: [Report.Section] = []
            for placement in Placement.all {
                let raw = try Baseline.parse(
                    try Processes.output(of: baselinePath, counts + placement.baselineArguments))
                var command = placement.hostPrefix + [executable, "measure"]
                command += ["--pings", counts[0], "--calls", counts[1], "--outstanding", counts[2]]
                if let guest = placement.guestCPU { command += ["--guest-cpu", String(guest)] }
                let measured = try Measurement.parse(try Processes.output(of: command[0], Array(command.dropFirst())))
                sections.append(Report.Section(placement: placement.name, raw: raw, rhp: measured))
            }
            Report(sections: sections).print()
            try MetricsOverhead.report(sizes: sizes, rounds: 3)
        }
    }

    /// One RHP measurement: this process is the host, a spawned copy of itself the guest.
    struct Measure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Measure RHP once and print key=value figures.")

        @OptionGroup var sizes: Sizes

        @Option(help: "Pin the guest process to this CPU (with taskset).")
        var guestCPU: Int?

        @Flag(help: "Record every call into a Prometheus backend, as sandboxd does (oasis_rhp_*).")
        var metrics = false

        func run() async throws {
            var logger = Logger(label: "bench-rhp")
            logger.logLevel = .error
            let executable = Processes.ownExecutable()
            let directory = String(cString: mkdtemp(strdup("/tmp/bench-rhp.XXXXXX")))
            let socketPath = directory + "/host.sock"
            let listener = try Processes.listen(at: socketPath)
            let guestCommand = [executable, "guest", "--socket", socketPath]
            let guest =
                if let guestCPU {
                    try Processes.spawn("/usr/bin/taskset", ["taskset", "-c", String(guestCPU)] + guestCommand)
                } else {
                    try Processes.spawn(executable, guestCommand)
                }
            let fd = try Processes.accept(listener)
            close(listener)

            var configuration = ConnectionConfiguration()
            if metrics { configuration.metrics = MetricsOverhead.metrics() }
            let connection = try await Connection.withConnectedSocket(fd, role: .host, configuration: configuration, logger: logger)
            _ = try await connection.initHost(
                RuntimeInfoRequest(
                    runtimeID: try Namespace(bytes: [0x80] + [UInt8](repeating: 0, count: 31)),
                    consensusChainContext: String(repeating: "0", count: 64),
                    consensusProtocolVersion: Version(major: 7)
                )
            )
            let runner = Runner(connection: connection, pings: sizes.pings, calls: sizes.calls, outstanding: sizes.outstanding)
            let global = try await runner.latency()
            let pinned = try await withTaskExecutorPreference(connection.taskExecutor) { try await runner.latency() }
            let globalThroughput = try await runner.throughput()
            let pinnedThroughput = try await withTaskExecutorPreference(connection.taskExecutor) {
                try await runner.throughput()
            }
            connection.close()
            _ = await connection.waitUntilClosed()
            try Processes.wait(guest)
            unlink(socketPath)
            rmdir(directory)
            print(
                Measurement(
                    global: .init(latency: global, throughput: globalThroughput),
                    pinned: .init(latency: pinned, throughput: pinnedThroughput)
                ).line
            )
        }
    }

    struct Guest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The runtime side (started by the benchmark itself).")

        @Option(help: "The host's UNIX socket.")
        var socket: String

        func run() async throws {
            var logger = Logger(label: "bench-rhp-guest")
            logger.logLevel = .error
            var configuration = ConnectionConfiguration()
            configuration.handlerExecution = .eventLoop
            let connection = try await Connection.connect(
                unixSocketPath: socket, role: .guest, handler: PingHandler(), configuration: configuration, logger: logger)
            _ = try await connection.initGuest { _ in RuntimeInfoResponse(runtimeVersion: Version(major: 0, minor: 1)) }
            _ = await connection.waitUntilClosed()
        }
    }
}

/// Where the two processes of a run may execute.
struct Placement {
    var name: String
    var hostCPU: Int?
    var guestCPU: Int?

    static let all = [
        Placement(name: "same CPU (both pinned to CPU 0)", hostCPU: 0, guestCPU: 0),
        Placement(name: "across CPUs (pinned to CPU 0 and CPU 1)", hostCPU: 0, guestCPU: 1),
        Placement(name: "unpinned", hostCPU: nil, guestCPU: nil),
    ]

    var baselineArguments: [String] {
        guard let hostCPU, let guestCPU else { return [] }
        return [String(hostCPU), String(guestCPU)]
    }

    /// `taskset -c N` when the host is pinned (its threads and children inherit the mask).
    var hostPrefix: [String] {
        guard let hostCPU else { return [] }
        return ["/usr/bin/taskset", "-c", String(hostCPU)]
    }
}

/// The guest's handler: pings answered on the spot, everything else refused.
struct PingHandler: Handler {
    func handle(_ request: Body) async throws -> Body {
        immediateResponse(to: request)!
    }

    func immediateResponse(to request: Body) -> Body? {
        guard case .runtimePingRequest = request else { return .error(.methodNotSupported) }
        return .empty
    }
}
