import ArgumentParser
import Foundation
import Logging
import SandboxDaemon
import SystemdSupport

/// `sandboxd`: the sandbox provisioning daemon. Runs in the foreground; never forks.
@main
struct SandboxdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandboxd",
        abstract: "Provision and supervise Oasis runtimes in namespaced sandboxes.",
        discussion: "Runs in the foreground. SIGTERM/SIGINT stop it gracefully; SIGHUP reloads the config file."
    )

    @Option(name: .long, help: "Config file (YAML).")
    var config: String = DaemonConfiguration.defaultPath

    @Option(name: .long, help: "Control socket path (overrides socket.path).")
    var socket: String?

    @Option(name: .customLong("state-dir"), help: "State directory (overrides state_directory).")
    var stateDirectory: String?

    @Option(name: .customLong("runtime-dir"), help: "Runtime directory (overrides runtime_directory).")
    var runtimeDirectory: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    @Option(name: .customLong("log-target"), help: "auto (the journal when run by systemd), console or journal.")
    var logTarget: String = LogTarget.auto.rawValue

    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("unknown log level \(logLevel)")
        }
        if LogTarget(rawValue: logTarget) == nil {
            throw ValidationError("unknown log target \(logTarget) (auto, console or journal)")
        }
    }

    func run() async throws {
        let overrides = Overrides(
            socket: socket.map(absolute), stateDirectory: stateDirectory.map(absolute),
            runtimeDirectory: runtimeDirectory.map(absolute), logLevel: logLevel.flatMap(Logger.Level.init(rawValue:))
        )
        let systemd = SystemdIntegration.start(logTarget: LogTarget(rawValue: logTarget) ?? .auto)
        let bootstrapLogger = Logger(label: "sandboxd")
        var configuration: DaemonConfiguration
        do {
            configuration = try ConfigLoader.load(path: config)
        } catch {
            systemd.fatal(error.message, errno: .invalidArgument)
            throw ExitCode(78)  // EX_CONFIG
        }
        overrides.apply(&configuration)

        var logger = bootstrapLogger
        logger.logLevel = configuration.logLevel
        let backend: any RuntimeBackend
        let metrics = DaemonMetrics()
        do {
            backend = try makeBackend(
                configuration: configuration, logger: logger,
                journal: systemd.provisionerJournal(configuration, logger: logger, metrics: metrics), metrics: metrics
            )
        } catch {
            systemd.fatal("\(error)", errno: nil)
            throw ExitCode(1)
        }
        let daemon = Daemon(
            configuration: configuration,
            options: .init(
                configPath: absolute(config), activatedSocket: try systemd.activatedSocket(),
                overrides: { overrides.apply(&$0) }
            ),
            backend: backend, reporter: systemd.reporter(logger: logger), metrics: metrics, logger: logger
        )
        do {
            try await daemon.run()
        } catch {
            FileHandle.standardError.write(Data("sandboxd: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
    }

    private func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}

/// Command-line values that win over the config file (also after a SIGHUP reload).
struct Overrides: Sendable {
    var socket: String?
    var stateDirectory: String?
    var runtimeDirectory: String?
    var logLevel: Logger.Level?

    func apply(_ configuration: inout DaemonConfiguration) {
        if let socket { configuration.socketPath = socket }
        if let stateDirectory { configuration.stateDirectory = stateDirectory }
        if let runtimeDirectory { configuration.runtimeDirectory = runtimeDirectory }
        if let logLevel { configuration.logLevel = logLevel }
    }
}

