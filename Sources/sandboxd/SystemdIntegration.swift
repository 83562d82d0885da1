import ArgumentParser
import Foundation
import Logging
import SandboxDaemon
import RuntimeJournal
import SystemdSupport
import SystemPackage

/// What sandboxd takes from systemd at startup: where to log, the notify socket, the activated socket.
struct SystemdIntegration {
    /// The resolved log target (`auto` decided by `JOURNAL_STREAM`).
    let target: LogTarget
    let notifier: SystemdNotifier

    /// Bootstraps swift-log for `option` (once per process) and opens the notifier.
    static func start(logTarget option: LogTarget) -> SystemdIntegration {
        let target = option.resolved()
        LoggingSystem.bootstrap { label in
            var handler = target.makeHandler(label: label)
            handler.logLevel = .trace  // the Logger's own level (from the config) filters
            return handler
        }
        let logger = Logger(label: "sandboxd.systemd")
        let notifier = SystemdNotifier(onError: { logger.warning("sd_notify failed", metadata: ["error": "\($0)"]) })
        return SystemdIntegration(target: target, notifier: notifier)
    }

    /// The passed `control` socket, if socket-activated; a bad one is fatal (reported, then exit 1).
    func activatedSocket() throws -> CInt? {
        do {
            return try SocketActivation.listeningSocket()
        } catch {
            fatal("socket activation: \(error.message)", errno: error.errno)
            throw ExitCode(1)
        }
    }

    /// The daemon's reporter: notify, lifecycle journal entries (to the console when not logging to the
    /// journal), and log lines.
    func reporter(logger: Logger) -> SystemdReporter {
        SystemdReporter(
            notifier: notifier,
            lifecycle: JournalLifecycle(sink: target.makeSink(consoleLogger: logger)),
            logger: logger
        )
    }

    /// Runtime output and lifecycle entries: to the journal, or through `logger` on the console target.
    func provisionerJournal(_ configuration: DaemonConfiguration, logger: Logger, metrics: DaemonMetrics) -> ProvisionerJournal {
        ProvisionerJournal(
            sink: target.makeSink(consoleLogger: logger),
            rateLimit: .init(
                linesPerSecond: Double(configuration.journal.outputLinesPerSecond), burst: configuration.journal.outputBurst
            ),
            onError: { logger.warning("journal write failed", metadata: ["error": "\($0)"]) },
            onDroppedLine: { metrics.recordDroppedLine(runtime: $0) }
        )
    }

    /// `STATUS=fatal: …` + `ERRNO=`, and the message on standard error.
    func fatal(_ message: String, errno: Errno?) {
        notifier.fatal(message, errno: errno)
        FileHandle.standardError.write(Data("sandboxd: \(message)\n".utf8))
    }
}
