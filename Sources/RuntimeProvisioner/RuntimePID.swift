import Foundation
import Sandbox

/// Finds the host pid of the runtime itself under the process a backend spawned.
///
/// `none` and `bubblewrap` report it (``SandboxProcess/runtimePID``). `namespaces` spawns the sandbox's
/// PID 1, a reaper whose only child is the runtime; the runtime has already connected when this runs, so
/// that child exists.
enum RuntimePID {
    static func find(process: SandboxProcess) -> Int32 {
        process.runtimePID ?? firstChild(of: process.pid) ?? process.pid
    }

    private static func firstChild(of pid: Int32) -> Int32? {
        let path = "/proc/\(pid)/task/\(pid)/children"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { Int32($0) }
    }
}
