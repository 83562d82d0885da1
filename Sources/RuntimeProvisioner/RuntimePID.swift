import Foundation
import Sandbox

/// Finds the host pid of the runtime itself under the process a backend spawned.
///
/// `none` spawns the runtime directly. `namespaces` spawns the sandbox's PID 1 (a reaper) whose only
/// child is the runtime. `bubblewrap` spawns bwrap, whose child is the sandbox's PID 1, whose child is the
/// runtime. The runtime has already connected when this runs, so the chain exists.
enum RuntimePID {
    static func find(process: SandboxProcess, backend: SandboxBackendKind) -> Int32 {
        let depth = switch backend {
        case .none: 0
        case .namespaces: 1
        case .bubblewrap: 2
        }
        var pid = process.pid
        for _ in 0..<depth {
            guard let child = firstChild(of: pid) else { return process.pid }
            pid = child
        }
        return pid
    }

    private static func firstChild(of pid: Int32) -> Int32? {
        let path = "/proc/\(pid)/task/\(pid)/children"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { Int32($0) }
    }
}
