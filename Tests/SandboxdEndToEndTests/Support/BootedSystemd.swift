#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TestSupport

/// systemd booted as PID 1 of private namespaces (see ``BootScripts``) with the repository's units and
/// `daemon` installed as `/usr/local/sbin/sandboxd`; bounded by `timeout` even if the test dies.
struct BootedSystemd {
    let directory: URL
    /// Host pid of the namespaces' PID 1 (systemd).
    let pid1: Int32
    private let process: Process

    static var isSupported: Bool {
        Host.isRoot && Host.executable(Host.systemd) && Host.executable(Host.unshare) && Host.executable(Host.nsenter)
            && Host.executable("/usr/bin/timeout") && Host.executable("/usr/sbin/pivot_root")
            && ((try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8))?.contains("overlay") ?? false)
            && hasCgroup2
    }

    /// A cgroup v2 hierarchy to give systemd a subtree of: the unified one of a hybrid host, or the root.
    static var hasCgroup2: Bool {
        FileManager.default.fileExists(atPath: "/sys/fs/cgroup/unified/cgroup.procs")
            || FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
    }

    /// Boots; `files` are extra files for the root (path → contents), e.g. unit drop-ins.
    static func boot(daemon: String, files: [String: String] = [:]) async throws -> BootedSystemd {
        let directory = try Host.temporaryDirectory("boot")
        for name in ["layers", "root"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        try BootScripts.outer.write(to: directory.appendingPathComponent("outer.sh"), atomically: true, encoding: .utf8)
        try BootScripts.inner.write(to: directory.appendingPathComponent("inner.sh"), atomically: true, encoding: .utf8)
        for (path, contents) in files {
            let url = directory.appendingPathComponent("overlay").appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try contents.write(to: url, atomically: true, encoding: .utf8)
        }
        let log = directory.appendingPathComponent("boot.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = [
            "-s", "KILL", "300", "/bin/sh", directory.appendingPathComponent("outer.sh").path,
            directory.path, Host.packageRoot.appendingPathComponent("systemd").path, daemon, Host.products.path,
        ]
        process.standardInput = FileHandle.nullDevice
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()

        // timeout → unshare → PID 1 of the namespaces.
        let pid1 = await polled(every: .milliseconds(50)) { () -> Int32? in
            guard let unshare = firstChild(of: process.processIdentifier), let child = firstChild(of: unshare),
                  (try? String(contentsOfFile: "/proc/\(child)/comm", encoding: .utf8))?.hasPrefix("systemd") == true
            else { return nil }
            return child
        } until: { $0 != nil || !process.isRunning }
        guard let pid1 else {
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            throw TestFailure("systemd did not boot: \(output)")
        }
        return BootedSystemd(directory: directory, pid1: pid1, process: process)
    }

    /// The control socket as seen from the host.
    var socketPath: String { "/proc/\(pid1)/root/run/sandboxd.sock" }

    /// Runs a command inside the booted system (its mount namespace, root and PID namespace).
    func run(_ executable: String, _ arguments: [String]) async throws -> ProcessResult {
        try await runCommand(
            Host.nsenter, ["--target", String(pid1), "--mount", "--root", "--pid", "--", executable] + arguments,
            environment: childEnvironment([:])
        )
    }

    func systemctl(_ arguments: [String]) async throws -> ProcessResult {
        try await run("/usr/bin/systemctl", ["--no-pager"] + arguments)
    }

    func journalctl(_ arguments: [String]) async throws -> String {
        try await run("/usr/bin/journalctl", ["--no-pager"] + arguments).stdout
    }

    /// `systemctl show -p …` as a dictionary.
    func show(_ unit: String, _ properties: [String]) async throws -> [String: String] {
        let output = try await systemctl(["show", unit] + properties.flatMap { ["-p", $0] }).stdout
        var values: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let pair = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if pair.count == 2 { values[String(pair[0])] = String(pair[1]) }
        }
        return values
    }

    /// Polls `show` until `condition` holds; returns the last values (check them: nil means timed out).
    func waitFor(
        _ unit: String, _ properties: [String], timeout: Duration = .seconds(30),
        _ condition: ([String: String]) -> Bool
    ) async throws -> [String: String]? {
        do {
            return try await eventuallyValue("\(unit) \(properties)", within: timeout, every: .milliseconds(100)) {
                () async throws -> [String: String]? in
                let values = try await show(unit, properties)
                return condition(values) ? values : nil
            }
        } catch is EventuallyTimeout {
            return nil
        }
    }

    /// Kills the namespaces' PID 1 (and with it everything in them), then removes its cgroups and files.
    func shutdown() async {
        kill(pid1, SIGKILL)
        _ = try? await eventually("the namespaces' runner to exit", within: .seconds(10)) { !process.isRunning }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        if let cgroup = try? String(contentsOf: directory.appendingPathComponent("cgroup"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines), cgroup.hasPrefix("/sys/fs/cgroup/") {
            Self.removeCgroupTree(cgroup)
        }
        try? FileManager.default.removeItem(at: directory)
    }

    private static func removeCgroupTree(_ path: String) {
        let children = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for child in children {
            var isDirectory: ObjCBool = false
            let childPath = path + "/" + child
            if FileManager.default.fileExists(atPath: childPath, isDirectory: &isDirectory), isDirectory.boolValue {
                removeCgroupTree(childPath)
            }
        }
        rmdir(path)
    }

    private static func firstChild(of pid: Int32) -> Int32? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { Int32($0) }
    }
}
