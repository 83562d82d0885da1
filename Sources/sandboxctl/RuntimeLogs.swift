#if canImport(Glibc)
import Glibc
#endif
import SystemCalls

/// `sandboxctl logs --journal NAME [-f] [-n N]`: that runtime's journal, through journalctl (run here rather
/// than through SystemdSupport, so the client links neither NIO, libseccomp nor libsystemd).
///
/// Matches `SANDBOX_RUNTIME_NAME=NAME`, which both the runtime's forwarded output and the daemon's lifecycle
/// entries about it carry, so the output reads as the runtime's story: started, its lines, stopped, restart
/// scheduled, … journalctl does the paging, following and access control (members of `systemd-journal`
/// or `adm` may read the system journal).
enum RuntimeLogs {
    static let journalctlPath = "/usr/bin/journalctl"

    /// journalctl's arguments (without the program name); `json`: one JSON object per entry (`-o json`).
    static func journalctlArguments(runtime name: String, follow: Bool = false, lines: Int? = nil, json: Bool = false)
        -> [String]
    {
        var arguments = ["--no-pager", json ? "--output=json" : "--output=short-iso", "SANDBOX_RUNTIME_NAME=\(name)"]
        if let lines { arguments.append("--lines=\(max(0, lines))") }
        if follow { arguments.append("--follow") }
        return arguments
    }

    /// Replaces this process with journalctl at `path` (so `-f` ends with Ctrl-C as usual); returns only by
    /// throwing ``CLIError/unavailable(_:)`` when it cannot run.
    static func exec(
        runtime name: String, follow: Bool = false, lines: Int? = nil, json: Bool = false, path: String = journalctlPath
    ) throws(CLIError) -> Never {
        let arguments = [path] + journalctlArguments(runtime: name, follow: follow, lines: lines, json: json)
        var pointers = arguments.map { strdup($0) }
        pointers.append(nil)
        execv(path, pointers)
        let code = errno
        for pointer in pointers { free(pointer) }
        let error = SystemCallError("execv(\(path))", errno: .init(rawValue: code))
        throw CLIError.unavailable("cannot run journalctl (--journal needs systemd's journalctl at \(path)): \(error)")
    }
}
