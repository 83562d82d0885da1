public import Sandbox
public import SystemPackage

/// Why the provisioner could not start, reach or control a runtime.
public struct ProvisionerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Stable identifiers, safe to match on and to show in APIs.
    public enum Code: String, Sendable, Hashable {
        case missingHostInfo = "missing_host_info"
        case runtimeDirectory = "runtime_directory"
        case hostSocket = "host_socket"
        case spawnFailed = "spawn_failed"
        case connectTimeout = "connect_timeout"
        case exitedBeforeConnecting = "exited_before_connecting"
        case handshakeFailed = "handshake_failed"
        case versionMismatch = "version_mismatch"
        case hostInitializerFailed = "host_initializer_failed"
        case notReady = "not_ready"
        case controlQueueFull = "control_queue_full"
        case runtimeRestarted = "runtime_restarted"
        case stopped
        case gaveUp = "gave_up"
        case timeout
        case alreadyAttached = "already_attached"
        case notAttachable = "not_attachable"
        /// Backing off after a failed start or a crash (a call does not wait for the next attempt).
        case restarting
    }

    public var code: Code
    public var message: String
    public var errno: Errno?
    /// For ``Code/spawnFailed`` from the sandbox: the typed error with its stage, errno and op.
    public var sandbox: SandboxError?

    public init(_ code: Code, _ message: String, errno: Errno? = nil, sandbox: SandboxError? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
        self.sandbox = sandbox
    }

    public var description: String {
        if let errno { return "\(message): \(errno)" }
        return message
    }
}
