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
        subcommands: [Host.self, Guest.self],
        defaultSubcommand: Host.self
    )
}

extension BenchRHP {
    struct Host: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the benchmark (default).")

        @Option(help: "Sequential pings measured per latency run.")
        var pings = 20_000

        @Option(help: "Calls per throughput run.")
        var calls = 200_000

        @Option(help: "Calls in flight during throughput runs.")
        var outstanding = 64

        @Option(help: "The compiled bench/rhp-pingpong.c (default: rhp-pingpong next to this binary).")
        var baseline: String?

        func run() async throws {
            var logger = Logger(label: "bench-rhp")
            logger.logLevel = .error
            let executable = Processes.ownExecutable()
            let directory = String(cString: mkdtemp(strdup("/tmp/bench-rhp.XXXXXX")))
            let socketPath = directory + "/host.sock"
            let listener = try Processes.listen(at: socketPath)
            let guest = try Processes.spawn(executable, [executable, "guest", "--socket", socketPath])
            let fd = try Processes.accept(listener)
            close(listener)

            let connection = try await Connection.withConnectedSocket(fd, role: .host, logger: logger)
            let info = try await connection.initHost(
                RuntimeInfoRequest(
                    runtimeID: try Namespace(bytes: [0x80] + [UInt8](repeating: 0, count: 31)),
                    consensusChainContext: String(repeating: "0", count: 64),
                    consensusProtocolVersion: Version(major: 7)
                )
            )
            print("bench-rhp: guest pid \(guest) speaks RHP \(info.protocolVersion); \(pings) pings, \(calls) calls, \(outstanding) outstanding")

            let runner = Runner(connection: connection, pings: pings, calls: calls, outstanding: outstanding)
            let defaultLatency = try await runner.latency()
            let pinnedLatency = try await withTaskExecutorPreference(connection.taskExecutor) { try await runner.latency() }
            let defaultThroughput = try await runner.throughput()
            let pinnedThroughput = try await withTaskExecutorPreference(connection.taskExecutor) {
                try await runner.throughput()
            }
            connection.close()
            _ = await connection.waitUntilClosed()
            try Processes.wait(guest)
            unlink(socketPath)
            rmdir(directory)

            let baselinePath = baseline ?? (executable.split(separator: "/").dropLast().joined(separator: "/").prefixedSlash + "/rhp-pingpong")
            let raw = try Baseline.run(baselinePath, pings: pings, calls: calls, outstanding: outstanding)

            Report(
                raw: raw,
                rows: [
                    .init(name: "RHP, caller on global executor", latency: defaultLatency, throughput: defaultThroughput),
                    .init(name: "RHP, caller on connection's event loop", latency: pinnedLatency, throughput: pinnedThroughput),
                ]
            ).print()
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
            let handler = ClosureHandler { request in
                guard case .runtimePingRequest = request else { throw ErrorPayload.methodNotSupported }
                return .empty
            }
            let connection = try await Connection.connect(
                unixSocketPath: socket, role: .guest, handler: handler, configuration: configuration, logger: logger)
            _ = try await connection.initGuest { _ in RuntimeInfoResponse(runtimeVersion: Version(major: 0, minor: 1)) }
            _ = await connection.waitUntilClosed()
        }
    }
}

extension String {
    fileprivate var prefixedSlash: String { hasPrefix("/") ? self : "/" + self }
}
