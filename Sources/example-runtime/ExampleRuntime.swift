import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import RuntimeArguments
@_spi(Testing) import RuntimeHostProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A minimal Oasis runtime speaking the guest side of RHP, with knobs for supervision tests.
@main
struct ExampleRuntime: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "example-runtime",
        abstract: "A minimal Oasis runtime: connects to OASIS_WORKER_HOST and answers the host over RHP."
    )

    enum AbortMode: String, ExpressibleByArgument, CaseIterable, Sendable {
        case respond, error, ignore
    }

    @Option(help: "Runtime version announced in the handshake (MAJOR.MINOR.PATCH).")
    var version = "0.1.0"

    @Option(help: "How to treat RuntimeAbortRequest: respond, error or ignore.")
    var abortMode = AbortMode.respond

    @Option(help: "Exit after this many seconds (with --exit-code).")
    var crashAfter: Double?

    @Option(help: "Exit status used by --crash-after.")
    var exitCode: Int32 = 1

    @Option(help: "Stop answering requests after this many seconds, but stay alive.")
    var hangAfter: Double?

    @Flag(help: "Print an Oasis-style JSON log line on stdout every second.")
    var logJson = false

    @Flag(help: "Print log lines on stdout as fast as possible.")
    var floodLogs = false

    @Flag(help: "Send a malformed frame right after the handshake.")
    var garbage = false

    @Option(help: "Send HostFetchGenesisHeightRequest to the host every this many seconds (an event-loop timer).")
    var hostCallInterval: Double?

    /// Runs without `/proc`, as Oasis sandboxes do (see README, "Runtimes written in Swift"): the
    /// arguments come from ``RuntimeArguments`` (Swift's `CommandLine` reads `/proc/self/cmdline`), and
    /// every task runs on NIO's event-loop threads instead of libdispatch's pool, whose monitor reads
    /// `/proc/<tid>/stat` and traps without it. Timers use the event loop too, never `Task.sleep`.
    static func main() async {
        let arguments = RuntimeArguments.commandLine()
        guard takeOverGlobalExecutor() else {
            fail("cannot run Swift tasks on NIO's event loops (libdispatch's pool needs /proc)")
        }
        await main(Array(arguments.dropFirst()))
    }
    @OptionGroup(title: "Resource abuse (limits tests)") var misbehaviour: Misbehaviour

    func validate() throws {
        guard Version(version) != nil else { throw ValidationError("--version must be MAJOR.MINOR.PATCH, got \(version)") }
        if let crashAfter, crashAfter < 0 { throw ValidationError("--crash-after must not be negative") }
        if let hangAfter, hangAfter < 0 { throw ValidationError("--hang-after must not be negative") }
        if let hostCallInterval, !(hostCallInterval > 0) { throw ValidationError("--host-call-interval must be positive") }
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "example-runtime")
        logger.logLevel = .info

        guard let hostSocket = getenv("OASIS_WORKER_HOST").map({ String(cString: $0) }), !hostSocket.isEmpty else {
            Self.fail("OASIS_WORKER_HOST is not set: it must name the host's UNIX socket")
        }

        misbehaviour.reportEarly()
        let chores = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()
        if let crashAfter {
            let code = exitCode
            chores.scheduleTask(in: .nanoseconds(Int64(crashAfter * 1e9))) {
                StdoutLog.line("crashing on purpose", level: "ERROR")
                Glibc.exit(code)
            }
        }
        if logJson { StdoutLog.startTicking(on: chores) }
        if floodLogs { StdoutLog.startFlooding() }

        let hangDeadline = hangAfter.map { ContinuousClock.now + .nanoseconds(Int64($0 * 1e9)) }
        let hostCalls = HostCalls()
        let handler = RuntimeHandler(abortMode: abortMode, hangDeadline: hangDeadline, hostCalls: hostCalls)
        var configuration = ConnectionConfiguration()
        configuration.handlerExecution = .eventLoop

        let connection: Connection
        do {
            connection = try await Connection.connect(
                unixSocketPath: hostSocket,
                role: .guest,
                handler: handler,
                configuration: configuration,
                logger: logger
            )
        } catch {
            Self.fail("cannot connect to OASIS_WORKER_HOST=\(hostSocket): \(error)")
        }

        let runtimeVersion = Version(version) ?? Version()
        let sendGarbage = garbage
        let hostCallInterval = hostCallInterval
        Task {
            do {
                _ = try await connection.initGuest { _ in
                    try await handler.waitIfHung()
                    return RuntimeInfoResponse(protocolVersion: .rhp, runtimeVersion: runtimeVersion)
                }
                logger.info("handshake done", metadata: ["version": "\(runtimeVersion)"])
                misbehaviour.startAbuse()
                if let hostCallInterval { hostCalls.start(every: hostCallInterval, on: chores, connection: connection) }
                if sendGarbage {
                    // A header announcing 5 bytes, then five CBOR break codes: not a message.
                    connection.sendRawBytes([0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff])
                }
            } catch {
                logger.error("handshake failed: \(error)")
            }
        }

        let reason = await connection.waitUntilClosed()
        switch reason {
        case .closedByPeer, .closedLocally:
            logger.info("host closed the connection; exiting")
        case .failed(let error):
            Self.fail("connection failed: \(error)")
        }
    }

    static func fail(_ message: String) -> Never {
        StdoutLog.writeStandardError("example-runtime: \(message)\n")
        Glibc.exit(1)
    }
}
