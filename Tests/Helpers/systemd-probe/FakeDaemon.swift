#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Logging
import SystemdSupport

/// A stand-in for sandboxd under real systemd: adopts the `control` socket, reports READY after a delay,
/// STATUS, watchdog pings from its loop, one fake runtime's output and lifecycle entries; exits on SIGTERM.
enum FakeDaemon {
    static func run() {
        let target = LogTarget.auto.resolved()
        LoggingSystem.bootstrap { target.makeHandler(label: $0) }
        let logger = Logger(label: "fake-sandboxd")
        let notifier = SystemdNotifier(onError: { logger.error("notify failed: \($0)") })
        let fd: Int32
        do {
            guard let control = try SocketActivation.listeningSocket() else {
                notifier.fatal("no control socket passed", errno: .badFileDescriptor)
                fail("no control socket")
            }
            fd = control
        } catch {
            notifier.fatal("\(error)", errno: error.errno)
            fail("\(error)")
        }
        logger.notice("fake sandboxd starting", metadata: ["log_target": "\(target)", "fd": "\(fd)"])
        // A slow start still pings the watchdog (systemd arms it from the start, not from READY).
        let delay = Double(ProcessInfo.processInfo.environment["FAKE_READY_DELAY"] ?? "") ?? 1.5
        let startup = ContinuousClock.now
        while ContinuousClock.now - startup < .milliseconds(Int64(delay * 1000)) {
            notifier.watchdogPass()
            sleep(seconds: 0.1)
        }

        let sink = target.makeSink(consoleLogger: logger)
        let runtime = RuntimeIdentity(id: "demo-id", name: "demo", pid: getpid())
        JournalLifecycle(sink: sink).record(.started, runtime: runtime, details: .init(restartCount: 0, version: "0.1.0"))
        let output = RuntimeOutputForwarder(runtime: runtime, sink: sink)
        output.forward(line: Array("demo runtime says hello".utf8), stream: .stdout)
        output.forward(line: Array("demo runtime complains".utf8), stream: .stderr)

        signal(SIGTERM, SIG_IGN)
        let terminate = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        terminate.setEventHandler {
            notifier.stopping(left: 1)
            logger.notice("fake sandboxd stopping")
            exit(0)
        }
        terminate.resume()

        Thread {
            while true {
                let connection = accept(fd, nil, nil)
                if connection < 0 { continue }
                _ = "ok\n".withCString { write(connection, $0, 3) }
                close(connection)
            }
        }.start()

        notifier.ready()
        notifier.status(RuntimeCounts(up: 1))
        let pass = notifier.watchdogInterval ?? .seconds(1)
        while true {
            notifier.watchdogPass()
            sleep(seconds: Double(pass.components.seconds) + Double(pass.components.attoseconds) / 1e18)
        }
    }
}
