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

    /// journalctl's arguments (without the program name).
    static func journalctlArguments(runtime name: String, follow: Bool = false, lines: Int? = nil) -> [String] {
        var arguments = ["--no-pager", "--output=short-iso", "SANDBOX_RUNTIME_NAME=\(name)"]
        if let lines { arguments.append("--lines=\(max(0, lines))") }
        if follow { arguments.append("--follow") }
        return arguments
    }

    /// Replaces this process with journalctl (so `-f` ends with Ctrl-C as usual); returns only by throwing.
    static func exec(runtime name: String, follow: Bool = false, lines: Int? = nil) throws(SystemCallError) -> Never {
        let arguments = [journalctlPath] + journalctlArguments(runtime: name, follow: follow, lines: lines)
        var pointers = arguments.map { strdup($0) }
        pointers.append(nil)
        execv(journalctlPath, pointers)
        let code = errno
        for pointer in pointers { free(pointer) }
        throw SystemCallError("execv(\(journalctlPath))", errno: .init(rawValue: code))
    }
}
