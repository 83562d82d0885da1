import CSandboxShim
public import SystemPackage

/// Why a sandbox could not be started: a stable code, a message, the setup stage and the `Errno`.
///
/// `sandbox-exec` maps ``Code/executableNotFound`` to 127, ``Code/executableNotExecutable`` and
/// ``Code/execFailed`` to 126 and everything else to 125 (``shellCode``).
public struct SandboxError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Stable identifiers: never renamed, only added to.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The executable (or its interpreter) does not exist.
        case executableNotFound = "exec-not-found"
        /// The executable exists but may not be executed (not executable, a directory, bad format).
        case executableNotExecutable = "exec-not-executable"
        /// `execve` failed for another reason.
        case execFailed = "exec-failed"
        /// Building the sandbox failed (see ``SandboxError/stage``).
        case setupFailed = "setup-failed"
        /// The sandbox did not reach `execve` within the setup deadline.
        case setupTimedOut = "setup-timeout"
        /// The spec cannot be honoured (relative target, bad hostname, fd ≤ 2 inherited, …).
        case invalidSpec = "invalid-spec"
        /// Every host uid/gid of the configured range is in use.
        case hostIDsExhausted = "host-ids-exhausted"
        /// The seccomp filter could not be built.
        case seccompUnavailable = "seccomp-unavailable"
        /// The backend's external sandbox tool (bwrap) is missing or cannot be executed.
        case backendUnavailable = "backend-unavailable"
        /// The `sandboxd-spawner` helper died while the spawn was in flight (it is restarted; retry).
        case spawnerDied = "spawner-died"
        /// The `sandboxd-spawner` helper cannot be started, or its request queue is full.
        case spawnerUnavailable = "spawner-unavailable"
    }

    public var code: Code
    public var message: String
    /// The failing setup stage's stable name (`"bind"`, `"uid-map"`, `"exec"`, …), when known.
    public var stage: String?
    public var errno: Errno?
    /// The failing mount-plan entry's description (`"bind (ro) /x → /y"`), when a plan entry failed.
    public var op: String?

    public init(_ code: Code, _ message: String, stage: String? = nil, errno: Errno? = nil, op: String? = nil) {
        self.code = code
        self.message = message
        self.stage = stage
        self.errno = errno
        self.op = op
    }

    /// The conventional shell status for this failure: 127 not found, 126 not executable, else 125.
    public var shellCode: Int32 {
        switch code {
        case .executableNotFound: 127
        case .executableNotExecutable, .execFailed: 126
        default: 125
        }
    }

    public var description: String {
        var text = "\(code.rawValue): \(message)"
        if let stage { text += " [stage \(stage)" + (errno.map { ", \($0) (errno \($0.rawValue))" } ?? "") + "]" }
        else if let errno { text += " [\(errno) (errno \(errno.rawValue))]" }
        return text
    }

    /// The error for a failed `execve` (or a pre-check of the executable).
    static func exec(_ errno: Errno, path: String) -> SandboxError {
        switch errno {
        case .noSuchFileOrDirectory, .notDirectory, .tooManySymbolicLinkLevels, .fileNameTooLong:
            SandboxError(.executableNotFound, "\(path): not found", stage: "exec", errno: errno)
        case .permissionDenied, .notPermitted, .execFormatError, .isDirectory, .textFileBusy:
            SandboxError(.executableNotExecutable, "\(path): cannot execute", stage: "exec", errno: errno)
        default:
            SandboxError(.execFailed, "\(path): execve failed", stage: "exec", errno: errno)
        }
    }

    /// Maps a shim result to a typed error; `describeOp` names the mount-plan entry at an index.
    static func fromShim(
        _ result: sbx_spawn_result, path: String, describeOp: (Int) -> String
    ) -> SandboxError {
        let stage = String(cString: sbx_stage_name(result.stage))
        let errno = Errno(rawValue: result.error)
        if result.stage == Int32(SBX_STAGE_EXEC.rawValue) { return .exec(errno, path: path) }
        if result.stage == Int32(SBX_STAGE_REQUEST_PATH.rawValue) {
            let op = result.op_index >= 0 ? describeOp(Int(result.op_index)) : nil
            return SandboxError(
                .invalidSpec, "the spawner refused a path of the sandbox plan\(op.map { " (\($0))" } ?? ""): targets must lie "
                    + "under \(SBX_NEW_ROOT)/ and bind sources under \(SBX_OLD_ROOT)/, without '.', '..' or empty components",
                stage: stage, errno: errno, op: op)
        }
        if result.stage == Int32(SBX_STAGE_TIMEOUT.rawValue) {
            return SandboxError(.setupTimedOut, "sandbox setup exceeded its deadline", stage: stage, errno: errno)
        }
        var message = "sandbox setup failed at \(stage)"
        let op = result.op_index >= 0 ? describeOp(Int(result.op_index)) : nil
        if let op { message += " (\(op))" }
        return SandboxError(.setupFailed, message, stage: stage, errno: errno, op: op)
    }
}
