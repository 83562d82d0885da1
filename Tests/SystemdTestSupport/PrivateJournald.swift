#if canImport(Glibc)
import Glibc
#endif
public import Foundation
import TestSupport

/// A real `systemd-journald` in a private mount namespace (tmpfs on /run/systemd, /run/log and
/// /var/log/journal, `Storage=volatile`), so tests never touch the host's journal.
///
/// Commands run inside that namespace through `nsenter --mount`; the namespace and its journal vanish
/// when journald exits (``stop()``, or `timeout` after 5 minutes if the test process died).
public struct PrivateJournald {
    public let directory: URL
    public let pid: Int32
    private let process: Process

    /// Starts journald; with `catalog`, `journalctl -x` in the namespace uses a database built from
    /// the repository's `systemd/sandboxd.catalog`.
    public static func start(catalog: Bool = false) async throws -> PrivateJournald {
        let directory = try Host.temporaryDirectory("journald")
        let config = """
            [Journal]
            Storage=volatile
            RateLimitBurst=0
            ReadKMsg=no
            ForwardToSyslog=no
            ForwardToWall=no
            ForwardToConsole=no
            ForwardToKMsg=no

            """
        try config.write(to: directory.appendingPathComponent("journald.conf"), atomically: true, encoding: .utf8)
        var catalogMount = ""
        if catalog {
            let root = directory.appendingPathComponent("catalog-root")
            let source = root.appendingPathComponent("usr/lib/systemd/catalog")
            try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                at: Host.packageRoot.appendingPathComponent("systemd/sandboxd.catalog"),
                to: source.appendingPathComponent("sandboxd.catalog")
            )
            let update = try await runCommand(Host.journalctl, ["--root=\(root.path)", "--update-catalog"])
            guard update.status == 0 else { throw TestFailure("journalctl --update-catalog: \(update.stderr)") }
            catalogMount = "mount --bind \(root.path)/var/lib/systemd/catalog /var/lib/systemd/catalog"
        }
        let script = """
            #!/bin/sh
            set -e
            mount -t tmpfs -o mode=0755 tmpfs /run/systemd
            mount -t tmpfs -o mode=0755 tmpfs /run/log
            if [ -d /var/log/journal ]; then mount -t tmpfs -o mode=0755 tmpfs /var/log/journal; fi
            mount --bind \(directory.path)/journald.conf /etc/systemd/journald.conf
            \(catalogMount)
            exec /usr/bin/timeout -s KILL 300 \(Host.journald)

            """
        let scriptURL = directory.appendingPathComponent("journald.sh")
        try script.write(to: scriptURL, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Host.unshare)
        process.arguments = ["--mount", "--propagation", "private", "/bin/sh", scriptURL.path]
        process.standardInput = FileHandle.nullDevice
        let log = try FileHandle(forWritingTo: {
            let url = directory.appendingPathComponent("journald.log")
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
            return url
        }())
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let journald = PrivateJournald(directory: directory, pid: process.processIdentifier, process: process)
        let socket = "/proc/\(journald.pid)/root/run/systemd/journal/socket"
        let started = await polled(within: .seconds(10), every: .milliseconds(20)) { FileManager.default.fileExists(atPath: socket) } until: {
            $0 || !process.isRunning
        }
        guard started else {
            let output = (try? String(contentsOf: directory.appendingPathComponent("journald.log"), encoding: .utf8)) ?? ""
            await journald.stop()
            throw TestFailure("private journald did not start: \(output)")
        }
        return journald
    }

    /// Runs `executable` inside journald's mount namespace.
    public func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> ProcessResult {
        try await runCommand(
            Host.nsenter, ["--target", String(pid), "--mount", "--", executable] + arguments, environment: environment
        )
    }

    /// Entries matching `matches` (`FIELD=value`), polling until at least `count` are there (or 10 s passed).
    public func entries(_ matches: [String], atLeast count: Int = 1) async throws -> [[String: String]] {
        try await polled(within: .seconds(10), every: .milliseconds(100)) { () async throws -> [[String: String]] in
            let result = try await self.run(Host.journalctl, ["--no-pager", "-o", "json", "--all"] + matches)
            return result.stdout.split(separator: "\n").compactMap { Self.decode(String($0)) }
        } until: { $0.count >= count }
    }

    /// `journalctl` output (any options) inside the namespace.
    public func journalctl(_ arguments: [String]) async throws -> String {
        try await self.run(Host.journalctl, ["--no-pager"] + arguments).stdout
    }

    public func stop() async {
        kill(pid, SIGTERM)
        _ = try? await eventually("journald to exit after SIGTERM", within: .seconds(5)) { !process.isRunning }
        if process.isRunning { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }

    /// One `-o json` line → field → text (byte arrays decoded as UTF-8; repeated fields: the first value).
    public static func decode(_ line: String) -> [String: String]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        var fields: [String: String] = [:]
        for (key, value) in object {
            switch value {
            case let text as String: fields[key] = text
            case let bytes as [NSNumber]: fields[key] = String(decoding: bytes.map { $0.uint8Value }, as: UTF8.self)
            case let values as [Any]: fields[key] = values.first.map { "\($0)" }
            default: continue
            }
        }
        return fields
    }
}
