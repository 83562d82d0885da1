#if canImport(Glibc)
import Glibc
#endif
public import Foundation
import Synchronization

/// Runs blocking work on a thread of its own.
///
/// Neither Swift's cooperative pool nor libdispatch's global queues will do: on Linux both are sized to
/// the CPU count (2 here), so a few blocking reads would delay everything else, e.g. a notify listener.
public func offloaded<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A finished child process.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a command to completion (killed after `timeout`), capturing its output.
public func runCommand(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
    timeout: Duration = .seconds(20)
) async throws -> ProcessResult {
    try await offloaded {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        let killer = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(timeout.components.seconds * 1000)), execute: killer)
        let stderrBytes = Mutex(Data())
        let stderrDone = DispatchSemaphore(value: 0)
        Thread {
            stderrBytes.withLock { $0 = err.fileHandleForReading.readDataToEndOfFile() }
            stderrDone.signal()
        }.start()
        let stdoutBytes = out.fileHandleForReading.readDataToEndOfFile()
        stderrDone.wait()
        process.waitUntilExit()
        killer.cancel()
        return ProcessResult(
            status: process.terminationStatus,
            stdout: String(decoding: stdoutBytes, as: UTF8.self),
            stderr: String(decoding: stderrBytes.withLock { $0 }, as: UTF8.self)
        )
    }
}

/// The environment of this process plus `extra`, minus anything systemd may have given the test runner.
public func childEnvironment(_ extra: [String: String]) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment.filter {
        !["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM"]
            .contains($0.key)
    }
    environment.merge(extra) { $1 }
    return environment
}
