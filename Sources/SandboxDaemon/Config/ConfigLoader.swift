import Foundation
import Logging
import RuntimeHostProtocol
import Sandbox
import Yams

/// Parses the daemon's YAML config file strictly into a ``DaemonConfiguration``.
///
/// The YAML is converted to a ``JSONValue`` tree first, so declared runtimes are validated by the same
/// ``SpecValidator`` as API requests. Unknown keys anywhere are errors naming the key (typos must not be
/// silently ignored in a daemon's config). Durations are strings like `500ms`, `5s`, `15m`, `24h`.
public enum ConfigLoader {
    /// Reads and parses a config file.
    public static func load(path: String) throws(DaemonError) -> DaemonConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DaemonError(.invalidConfig, "cannot read config file \(path)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DaemonError(.invalidConfig, "\(path) is not UTF-8")
        }
        do {
            var config = try parse(yaml: text)
            config.resolveRelativePaths(against: FileManager.default.currentDirectoryPath)
            return config
        } catch {
            throw DaemonError(error.code, "\(path): \(error.message)", field: error.field)
        }
    }

    /// Parses config text. `checkFilesystem` controls whether declared runtimes' paths must exist.
    public static func parse(yaml: String, checkFilesystem: Bool = true) throws(DaemonError) -> DaemonConfiguration {
        let root: JSONValue
        do {
            guard let node = try Yams.compose(yaml: yaml) else { return DaemonConfiguration() }
            root = try convert(node, path: "")
        } catch let error as DaemonError {
            throw error
        } catch {
            throw DaemonError(.invalidConfig, "not valid YAML: \(error)")
        }
        if root == .null { return DaemonConfiguration() }
        let reader = try JSONObjectReader(root, path: "", allowed: [
            "socket", "state_directory", "runtime_directory", "log_level", "host", "sandbox", "api",
            "supervision", "shutdown_timeout", "runtimes", "journal", "runtime_log_max_bytes", "limits", "bundles",
            "metrics",
        ], dialect: .config)
        var config = DaemonConfiguration()

        if let socket = try reader.object("socket", allowed: ["path", "group"]) {
            config.socketPath = try socket.string("path") ?? config.socketPath
            if socket.isNull("group") { config.socketGroup = nil } else if let group = try socket.string("group") {
                config.socketGroup = group.isEmpty ? nil : group
            }
        }
        config.stateDirectory = try reader.string("state_directory") ?? config.stateDirectory
        config.runtimeLogMaxBytes = Int(
            try reader.integer("runtime_log_max_bytes", in: 4096...(1 << 30)) ?? Int64(config.runtimeLogMaxBytes)
        )
        config.runtimeDirectory = try reader.string("runtime_directory") ?? config.runtimeDirectory
        if let level = try reader.string("log_level") {
            guard let parsed = Logger.Level(rawValue: level) else {
                throw DaemonError(
                    .invalidConfig, "log_level must be one of trace, debug, info, notice, warning, error, critical",
                    field: "log_level"
                )
            }
            config.logLevel = parsed
        }

        if let host = try reader.object("host", allowed: [
            "consensus_backend", "consensus_protocol_version", "consensus_chain_context",
        ]) {
            config.host.consensusBackend = try host.string("consensus_backend") ?? config.host.consensusBackend
            if let text = try host.string("consensus_protocol_version") {
                guard let version = Version(exactly: text) else {
                    throw DaemonError(.invalidConfig, "must be \"x.y.z\"", field: "host.consensus_protocol_version")
                }
                config.host.consensusProtocolVersion = version
            }
            if let context = try host.string("consensus_chain_context") {
                guard context.utf8.count == 64, context.utf8.allSatisfy(\.isASCIIHexDigit) else {
                    throw DaemonError(.invalidConfig, "must be 64 hex characters", field: "host.consensus_chain_context")
                }
                config.host.consensusChainContext = context.lowercased()
            }
        }

        if let sandbox = try reader.object("sandbox", allowed: [
            "default_backend", "allow_none", "bubblewrap_path", "spawner_path", "netns_pool", "host_id_base",
            "host_id_count",
        ]) {
            if let text = try sandbox.string("default_backend") {
                guard let kind = SandboxBackendKind(rawValue: text) else {
                    throw DaemonError(
                        .invalidConfig, "must be namespaces, bubblewrap or none", field: "sandbox.default_backend"
                    )
                }
                config.defaultBackend = kind
            }
            config.allowNone = try sandbox.bool("allow_none") ?? config.allowNone
            if sandbox.isNull("bubblewrap_path") {
                config.bubblewrapPath = nil
            } else if let path = try sandbox.string("bubblewrap_path") {
                config.bubblewrapPath = path.isEmpty ? nil : path
            }
            if let path = try sandbox.string("spawner_path"), !path.isEmpty {
                config.spawnerPath = try spawnerPath(path, checkFilesystem: checkFilesystem)
            }
            config.netnsPool = Int(
                try sandbox.integer("netns_pool", in: 0...Int64(NamespaceSandbox.Configuration.netnsPoolLimit))
                    ?? Int64(config.netnsPool)
            )
            let base = try sandbox.integer("host_id_base", in: 1...Int64(UInt32.max)) ?? Int64(config.hostIDs.base)
            let count = try sandbox.integer("host_id_count", in: 1...Int64(UInt32.max)) ?? Int64(config.hostIDs.count)
            guard base + count <= Int64(UInt32.max) else {
                throw DaemonError(.invalidConfig, "host id range overflows 32 bits", field: "sandbox.host_id_count")
            }
            config.hostIDs = HostIDRange(base: UInt32(base), count: UInt32(count))
        }
        if config.defaultBackend == .none, !config.allowNone {
            throw DaemonError(
                .invalidConfig, "default_backend none requires allow_none: true", field: "sandbox.default_backend"
            )
        }

        if let journal = try reader.object("journal", allowed: ["output_lines_per_second", "output_burst"]) {
            config.journal.outputLinesPerSecond = Int(
                try journal.integer("output_lines_per_second", in: 1...1_000_000) ?? Int64(config.journal.outputLinesPerSecond)
            )
            config.journal.outputBurst = Int(
                try journal.integer("output_burst", in: 1...10_000_000) ?? Int64(config.journal.outputBurst)
            )
        }

        if let limits = try reader.object("limits", allowed: ["cgroups", "defaults"]) {
            config.limits.cgroups = try limits.bool("cgroups") ?? config.limits.cgroups
            if case .object(let given)? = limits.object["defaults"] {
                // A key set to null removes that default; a missing key keeps it.
                let parsed = try LimitsSpec.parse(.object(given), prefix: "limits.defaults.", code: .invalidConfig)
                var defaults = config.limits.defaults
                for field in LimitsSpec.fields where given[field.key] != nil {
                    field.set(&defaults, field.get(parsed))
                }
                config.limits.defaults = defaults
            } else if let other = limits.object["defaults"], other != .null {
                throw DaemonError(.invalidConfig, "must be a mapping", field: "limits.defaults")
            }
        }

        if let bundles = try reader.object("bundles", allowed: [
            "max_entries", "max_file_size", "max_total_size", "max_compression_ratio",
        ]) {
            var limits = config.bundleLimits
            limits.maxEntries = Int(try bundles.integer("max_entries", in: 1...65_534) ?? Int64(limits.maxEntries))
            let sizes: ClosedRange<Int64> = 1...Int64(UInt32.max)
            limits.maxFileSize = UInt64(try bundles.integer("max_file_size", in: sizes) ?? Int64(limits.maxFileSize))
            limits.maxTotalSize = UInt64(try bundles.integer("max_total_size", in: sizes) ?? Int64(limits.maxTotalSize))
            limits.maxCompressionRatio = UInt64(
                try bundles.integer("max_compression_ratio", in: 1...100_000) ?? Int64(limits.maxCompressionRatio)
            )
            config.bundleLimits = limits
        }

        if let metrics = try reader.object("metrics", allowed: ["listen"]) {
            if let text = try metrics.string("listen"), !text.isEmpty {
                guard let address = MetricsListenAddress(text) else {
                    throw DaemonError(
                        .invalidConfig, "must be HOST:PORT with an IP address (IPv6 in brackets) and a port from 1 to 65535",
                        field: "metrics.listen")
                }
                config.metricsListen = address
            }
        }

        if let api = try reader.object("api", allowed: [
            "max_body_bytes", "request_timeout", "max_connections", "root_reserved_connections",
            "max_connections_per_uid", "max_event_streams", "max_event_streams_per_uid",
            "attach_handshake_timeout", "attach_reply_timeout", "attach_max_in_flight",
        ]) {
            config.attach.handshakeTimeout = try api.duration("attach_handshake_timeout") ?? config.attach.handshakeTimeout
            config.attach.replyTimeout = try api.duration("attach_reply_timeout") ?? config.attach.replyTimeout
            config.attach.maxInFlight = Int(try api.integer("attach_max_in_flight", in: 1...65536) ?? Int64(config.attach.maxInFlight))
            config.api.maxBodyBytes = Int(try api.integer("max_body_bytes", in: 1...(1 << 30)) ?? Int64(config.api.maxBodyBytes))
            config.api.requestTimeout = try api.duration("request_timeout") ?? config.api.requestTimeout
            config.api.maxConnections = Int(try api.integer("max_connections", in: 1...65536) ?? Int64(config.api.maxConnections))
            config.api.rootReservedConnections = Int(
                try api.integer("root_reserved_connections", in: 0...65535) ?? Int64(config.api.rootReservedConnections)
            )
            config.api.maxConnectionsPerUID = Int(
                try api.integer("max_connections_per_uid", in: 1...65536) ?? Int64(config.api.maxConnectionsPerUID)
            )
            config.api.maxEventStreams = Int(try api.integer("max_event_streams", in: 1...65536) ?? Int64(config.api.maxEventStreams))
            config.api.maxEventStreamsPerUID = Int(
                try api.integer("max_event_streams_per_uid", in: 1...65536) ?? Int64(config.api.maxEventStreamsPerUID)
            )
        }

        if let timers = try reader.object("supervision", allowed: [
            "connect_timeout", "handshake_timeout", "host_initializer_timeout", "abort_timeout",
            "watchdog_interval", "watchdog_timeout", "restart_initial_interval", "restart_max_interval",
            "restart_give_up_after", "backoff_reset_after", "stop_grace_period",
        ]) {
            var s = config.supervision
            s.connectTimeout = try timers.duration("connect_timeout") ?? s.connectTimeout
            s.handshakeTimeout = try timers.duration("handshake_timeout") ?? s.handshakeTimeout
            s.hostInitializerTimeout = try timers.duration("host_initializer_timeout") ?? s.hostInitializerTimeout
            s.abortTimeout = try timers.duration("abort_timeout") ?? s.abortTimeout
            s.watchdogInterval = try timers.duration("watchdog_interval") ?? s.watchdogInterval
            s.watchdogTimeout = try timers.duration("watchdog_timeout") ?? s.watchdogTimeout
            s.restartInitialInterval = try timers.duration("restart_initial_interval") ?? s.restartInitialInterval
            s.restartMaxInterval = try timers.duration("restart_max_interval") ?? s.restartMaxInterval
            s.restartGiveUpAfter = try timers.duration("restart_give_up_after") ?? s.restartGiveUpAfter
            s.backoffResetAfter = try timers.duration("backoff_reset_after") ?? s.backoffResetAfter
            s.stopGracePeriod = try timers.duration("stop_grace_period") ?? s.stopGracePeriod
            config.supervision = s
        }
        config.shutdownTimeout = try reader.duration("shutdown_timeout") ?? config.shutdownTimeout

        if let runtimes = reader.value("runtimes") {
            guard case .array(let items) = runtimes else {
                throw DaemonError(.invalidConfig, "must be a list of runtime specs", field: "runtimes")
            }
            var validator = SpecValidator(defaultBackend: config.defaultBackend, checkFilesystem: checkFilesystem)
            validator.bundleLimits = config.bundleLimits
            var seen = Set<String>()
            for (index, item) in items.enumerated() {
                let spec: RuntimeSpecification
                do {
                    spec = try validator.validate(item)
                } catch {
                    let field = "runtimes[\(index)]" + (error.field.map { ".\($0)" } ?? "")
                    throw DaemonError(.invalidConfig, "runtimes[\(index)]: \(error.message)", field: field)
                }
                guard seen.insert(spec.name).inserted else {
                    throw DaemonError(.invalidConfig, "duplicate runtime name \(spec.name)", field: "runtimes[\(index)].name")
                }
                if spec.sandbox == .none, !config.allowNone {
                    throw DaemonError(
                        .invalidConfig, "sandbox none requires sandbox.allow_none: true",
                        field: "runtimes[\(index)].sandbox"
                    )
                }
                config.runtimes.append(spec)
            }
        }
        return config
    }

    /// `sandbox.spawner_path`: absolute (the daemon starts it long after the config was read, from any cwd),
    /// and with `checkFilesystem` a regular file the daemon may execute.
    static func spawnerPath(_ path: String, checkFilesystem: Bool) throws(DaemonError) -> String {
        let field = "sandbox.spawner_path"
        guard path.hasPrefix("/") else { throw DaemonError(.invalidConfig, "must be an absolute path", field: field) }
        guard checkFilesystem else { return path }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw DaemonError(.invalidConfig, "\(path): \(String(cString: strerror(errno)))", field: field)
        }
        guard info.st_mode & S_IFMT == S_IFREG, access(path, X_OK) == 0 else {
            throw DaemonError(.invalidConfig, "\(path) is not an executable file", field: field)
        }
        return path
    }

    /// Parses `500ms`, `5s`, `15m`, `24h`, or a bare number of seconds.
    public static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, millis) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            // "ms" must win over "s": "5ms" also ends in "s", but "5m" is not a number then.
            guard let value = Int64(number), value >= 0 else { continue }
            return .milliseconds(value * millis)
        }
        if let seconds = Int64(text), seconds >= 0 { return .seconds(seconds) }
        return nil
    }

    // MARK: - YAML → JSONValue

    private static func convert(_ node: Node, path: String) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return .null
            case .bool: if let value = node.bool { return .bool(value) }
            case .int: if let value = node.int { return .integer(Int64(value)) }
            case .float: if let value = node.float { return .double(value) }
            default: break
            }
            return .string(scalar.string)
        case .sequence(let sequence):
            return .array(try sequence.enumerated().map { try convert($1, path: "\(path)[\($0)]") })
        case .mapping(let mapping):
            var object: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw DaemonError(.invalidConfig, "mapping keys must be plain strings", field: path)
                }
                let child = path.isEmpty ? keyScalar.string : "\(path).\(keyScalar.string)"
                guard object[keyScalar.string] == nil else {
                    throw DaemonError(.invalidConfig, "duplicate key", field: child)
                }
                object[keyScalar.string] = try convert(value, path: child)
            }
            return .object(object)
        case .alias:
            throw DaemonError(.invalidConfig, "YAML aliases are not supported", field: path)
        }
    }
}

extension DaemonConfiguration {
    /// Makes the daemon's own paths absolute (relative ones are relative to `directory`), so every
    /// component — the provisioner included — sees the same files whatever it does with the cwd.
    public mutating func resolveRelativePaths(against directory: String) {
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : (directory.hasSuffix("/") ? directory : directory + "/") + path
        }
        socketPath = absolute(socketPath)
        stateDirectory = absolute(stateDirectory)
        runtimeDirectory = absolute(runtimeDirectory)
        bubblewrapPath = bubblewrapPath.map(absolute)
    }
}
