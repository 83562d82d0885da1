import ArgumentParser
import Foundation

/// Options every command takes, before or after the subcommand name.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Control socket of sandboxd.")
    var socket: String = ProcessInfo.processInfo.environment["SANDBOXD_SOCKET"] ?? "/run/sandboxd.sock"

    @Flag(name: .long, help: "Print the API's JSON instead of tables.")
    var json = false

    var client: UnixHTTPClient { UnixHTTPClient(socketPath: socket) }
}

/// Things every command does with an API answer.
enum API {
    /// Sends a request and returns the body of a 2xx answer; an error envelope becomes `CLIError.refused`.
    static func call(_ global: GlobalOptions, _ method: String, _ path: String, body: [UInt8]? = nil) throws(CLIError) -> [UInt8] {
        let result = try global.client.send(method, path, body: body)
        try check(result)
        return result.body
    }

    static func check(_ result: HTTPResult) throws(CLIError) {
        guard !(200..<300).contains(result.status) else { return }
        if let object = try? JSONSerialization.jsonObject(with: Data(result.body)) as? [String: Any],
           let error = object["error"] as? [String: Any] {
            var message = error["message"] as? String ?? "request failed"
            if let field = error["field"] as? String, !message.contains(field) { message += " [field \(field)]" }
            throw .refused(status: result.status, code: error["code"] as? String ?? "\(result.status)", message: message)
        }
        throw .refused(status: result.status, code: "http_\(result.status)", message: "HTTP \(result.status)")
    }

    static func object(_ body: [UInt8]) throws(CLIError) -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw .protocolError("sandboxd answered something that is not a JSON object")
        }
        return object
    }

    static func printJSON(_ body: [UInt8]) {
        var text = String(decoding: body, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        print(text)
    }

    static func path(_ name: String, _ suffix: String = "") -> String {
        let escaped = name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? name
        return "/v1/runtimes/\(escaped)\(suffix)"
    }

    static func text(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: "-"
        case let string as String: string
        case let number as NSNumber: number.stringValue
        default: "\(value!)"
        }
    }

    /// A one-line summary of a Status object: `name: state (pid 123)`.
    static func summary(_ status: [String: Any]) -> String {
        let state = text(status["state"])
        let coloured = Table.useColour && Table.colour(forState: state) != nil
            ? "\u{1B}[\(Table.colour(forState: state)!.rawValue)m\(state)\u{1B}[0m" : state
        var line = "\(text(status["name"])): \(coloured)"
        if let pid = status["pid"] as? NSNumber { line += " (pid \(pid))" }
        return line
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List runtimes.")
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let body = try API.call(global, "GET", "/v1/runtimes")
        if global.json { return API.printJSON(body) }
        let runtimes = (try API.object(body)["runtimes"] as? [[String: Any]]) ?? []
        if runtimes.isEmpty { return print("no runtimes") }
        let rows = runtimes.map { status -> [Table.Cell] in
            let state = API.text(status["state"])
            return [
                .init(API.text(status["name"])), .init(state, colour: Table.colour(forState: state)),
                .init(API.text(status["pid"])), .init(API.text(status["version"])),
                .init(API.text(status["restarts"])), .init(API.text(status["sandbox"])),
                .init(API.text(status["started_at"])), .init(API.text(status["last_error"])),
            ]
        }
        print(Table(header: ["NAME", "STATE", "PID", "VERSION", "RESTARTS", "SANDBOX", "STARTED", "LAST ERROR"], rows: rows).render())
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one runtime's status.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Runtime name.") var name: String

    func run() throws {
        let body = try API.call(global, "GET", API.path(name))
        if global.json { return API.printJSON(body) }
        let status = try API.object(body)
        let keys = ["name", "id", "state", "desired", "pid", "version", "restarts", "sandbox", "started_at", "last_error", "source"]
        let rows = keys.map { key -> [Table.Cell] in
            let value = API.text(status[key])
            return [.init(key + ":"), .init(value, colour: key == "state" ? Table.colour(forState: value) : nil)]
        }
        print(Table(header: ["FIELD", "VALUE"], rows: rows).render().split(separator: "\n").dropFirst().joined(separator: "\n"))
    }
}

struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Provision a runtime from a spec file and/or flags.",
        discussion: "Flags override the file's fields. `-f -` reads the spec from standard input."
    )
    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .customLong("file")], help: "Spec JSON file (- for stdin).") var file: String?
    @Option(help: "Runtime name.") var name: String?
    @Option(help: "Runtime id (64 hex characters).") var id: String?
    @Option(help: "Absolute path of the runtime executable.") var executable: String?
    @Option(help: "Absolute path of an Oasis runtime bundle (.orc) to run instead of --executable.") var bundle: String?
    @Option(help: "Bundle component: ronl (default) or rofl.NAME.") var component: String?
    @Option(name: .customLong("manifest-hash"), help: "Pin the bundle's manifest hash (64 hex).") var manifestHash: String?
    @Option(name: .customLong("arg"), parsing: .unconditionalSingleValue, help: "An argument (repeatable).") var arguments: [String] = []
    @Option(name: .customLong("env"), help: "An environment variable K=V (repeatable).") var environment: [String] = []
    @Option(help: "Sandbox backend: namespaces, bubblewrap or none.") var sandbox: String?
    @Flag(inversion: .prefixedNo, help: "Share the host network.") var network: Bool?
    @Flag(name: .customLong("proc"), inversion: .prefixedNo, help: "Mount /proc in the sandbox (off by default, as in Oasis).") var mountProc: Bool?
    @Flag(inversion: .prefixedNo, help: "Start it right away (default: yes).") var autostart: Bool?
    @Option(help: "limits.memory_bytes: memory limit in bytes (no swap).") var memoryBytes: Int64?
    @Option(help: "limits.pids: most tasks (processes + threads).") var pids: Int64?
    @Option(help: "limits.cpu_percent: CPU quota in percent of one CPU.") var cpuPercent: Int64?
    @Option(help: "limits.cpu_weight: relative CPU weight (1-10000, default 100).") var cpuWeight: Int64?
    @Option(help: "limits.tmpfs_bytes: size of /tmp and /dev/shm in the sandbox.") var tmpfsBytes: Int64?
    @Option(help: "limits.open_files: RLIMIT_NOFILE inside.") var openFiles: Int64?

    func run() throws {
        var spec: [String: Any] = [:]
        if let file {
            let data: Data?
            if file == "-" { data = FileHandle.standardInput.readDataToEndOfFile() } else { data = FileManager.default.contents(atPath: file) }
            guard let data else { throw CLIError.usage("cannot read \(file)") }
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw CLIError.usage("\(file) is not a JSON object")
            }
            spec = object
        }
        if let name { spec["name"] = name }
        if let id { spec["id"] = id }
        if let executable { spec["executable"] = executable }
        if let bundle {
            spec["bundle"] = bundle.hasPrefix("/") ? bundle : FileManager.default.currentDirectoryPath + "/" + bundle
        }
        if let component { spec["component"] = component }
        if let manifestHash { spec["manifest_hash"] = manifestHash }
        if !arguments.isEmpty { spec["args"] = arguments }
        if !environment.isEmpty {
            var env = spec["env"] as? [String: Any] ?? [:]
            for pair in environment {
                guard let equals = pair.firstIndex(of: "=") else { throw CLIError.usage("--env wants K=V, got \(pair)") }
                env[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            spec["env"] = env
        }
        if let sandbox { spec["sandbox"] = sandbox }
        if let network { spec["network"] = network }
        if let mountProc { spec["mount_proc"] = mountProc }
        if let autostart { spec["autostart"] = autostart }
        let limitFlags: [(String, Int64?)] = [
            ("memory_bytes", memoryBytes), ("pids", pids), ("cpu_percent", cpuPercent), ("cpu_weight", cpuWeight),
            ("tmpfs_bytes", tmpfsBytes), ("open_files", openFiles),
        ]
        if limitFlags.contains(where: { $0.1 != nil }) {
            var limits = spec["limits"] as? [String: Any] ?? [:]
            for case let (key, value?) in limitFlags { limits[key] = value }
            spec["limits"] = limits
        }
        guard !spec.isEmpty else { throw CLIError.usage("give a spec with -f FILE and/or --name/--id/--executable or --bundle") }
        let bytes = try [UInt8](JSONSerialization.data(withJSONObject: spec, options: [.sortedKeys]))
        let body = try API.call(global, "POST", "/v1/runtimes", body: bytes)
        if global.json { return API.printJSON(body) }
        print("provisioned " + API.summary(try API.object(body)))
    }
}

/// start / stop / remove: a POST or DELETE that answers a Status.
protocol SimpleRuntimeCommand: ParsableCommand {
    var global: GlobalOptions { get }
    var name: String { get }
    var method: String { get }
    var suffix: String { get }
    var verb: String { get }
}

extension SimpleRuntimeCommand {
    func run() throws {
        let body = try API.call(global, method, API.path(name, suffix), body: method == "POST" ? Array("{}".utf8) : nil)
        if global.json { return API.printJSON(body) }
        print("\(verb) " + API.summary(try API.object(body)))
    }
}

struct Start: SimpleRuntimeCommand {
    static let configuration = CommandConfiguration(abstract: "Start a runtime (and keep it wanted running).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Runtime name.") var name: String
    var method: String { "POST" }
    var suffix: String { "/start" }
    var verb: String { "started" }
}

struct Stop: SimpleRuntimeCommand {
    static let configuration = CommandConfiguration(abstract: "Stop a runtime (it stays stopped across restarts).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Runtime name.") var name: String
    var method: String { "POST" }
    var suffix: String { "/stop" }
    var verb: String { "stopped" }
}

struct Remove: SimpleRuntimeCommand {
    static let configuration = CommandConfiguration(abstract: "Stop a runtime and forget it.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Runtime name.") var name: String
    var method: String { "DELETE" }
    var suffix: String { "" }
    var verb: String { "removed" }
}

struct Abort: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Abort a running runtime (it restarts).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Runtime name.") var name: String
    @Flag(help: "Kill at once instead of a graceful RHP abort.") var force = false
    @Option(name: .customLong("timeout-ms"), help: "Stop waiting after this many milliseconds (the abort goes on).")
    var timeoutMilliseconds: Int?

    func validate() throws {
        if let timeoutMilliseconds, !(1...86_400_000).contains(timeoutMilliseconds) {
            throw ValidationError("--timeout-ms must be from 1 to 86400000")
        }
    }

    func run() throws {
        let timeout = timeoutMilliseconds.map { #","timeout_ms":\#($0)"# } ?? ""
        let body = try API.call(global, "POST", API.path(name, "/abort"), body: Array(#"{"force":\#(force)\#(timeout)}"#.utf8))
        if global.json { return API.printJSON(body) }
        print("aborted " + API.summary(try API.object(body)))
    }
}

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ping a running runtime over RHP.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Runtime name.") var name: String

    func run() throws {
        let body = try API.call(global, "POST", API.path(name, "/ping"), body: Array("{}".utf8))
        if global.json { return API.printJSON(body) }
        print("\(name): rtt \(API.text(try API.object(body)["rtt_us"])) µs")
    }
}

struct Health: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the daemon's health and runtime counts.")
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let body = try API.call(global, "GET", "/v1/health")
        if global.json { return API.printJSON(body) }
        let object = try API.object(body)
        let counts = object["runtimes"] as? [String: Any] ?? [:]
        let order = ["running", "starting", "backoff", "stopped", "failed"]
        print("\(API.text(object["status"])): " + order.map { "\(API.text(counts[$0])) \($0)" }.joined(separator: ", "))
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show runtime events.",
        discussion: "Without --follow: the daemon's recent events. With --follow: new events as they happen."
    )
    @OptionGroup var global: GlobalOptions
    @Flag(name: [.short, .long], help: "Keep streaming new events.") var follow = false
    @Argument(help: "Only this runtime's events.") var name: String?

    func run() throws {
        var query = ["follow=\(follow)"]
        if let name { query.append("runtime=\(name.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? name)") }
        let json = global.json
        let failure = try global.client.stream("/v1/events?" + query.joined(separator: "&")) { line in
            guard !line.isEmpty else { return }
            if json { print(line) } else { print(Self.describe(line)) }
            fflush(nil)  // all streams: stdout itself is a global the compiler cannot prove safe
        }
        if let failure { try API.check(failure) }
    }

    static func describe(_ line: String) -> String {
        guard let event = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return line }
        var text = "\(API.text(event["time"]))  \(API.text(event["runtime"]))  \(API.text(event["type"]))"
        for key in ["version", "error", "exit"] where event[key] != nil {
            text += "  \(key)=\(API.text(event[key]))"
        }
        return text
    }
}
