public import Logging
public import RuntimeHostProtocol
public import Sandbox
public import SystemPackage

/// What a connector is told about the start attempt it serves.
public struct ConnectorContext: Sendable {
    /// The attempt's private directory (owned by the sandbox's host uid, mode 0700).
    public var runtimeDirectory: FilePath
    /// Whether the runtime runs inside a sandbox (then the socket is bound at `/host.sock`).
    public var sandboxed: Bool
    /// Host uid/gid that must be able to connect (the sandbox's), nil for the daemon's own.
    public var owner: (uid: UInt32, gid: UInt32)?
    /// Answers the runtime's requests on the connection.
    public var handler: any Handler
    public var connectionConfiguration: ConnectionConfiguration
    public var logger: Logger
}

/// Establishes the RHP connection with one runtime process: upstream's `Connector`.
public protocol Connector: Sendable {
    /// Adds what the runtime needs to find the host (environment, binds) to its sandbox spec.
    func configure(_ spec: inout SandboxSpec) throws
    /// Waits for `process` to connect; fails after `timeout` or as soon as the process exits.
    func connect(process: SandboxProcess, timeout: Duration) async throws -> Connection
    /// Releases the listener. Idempotent.
    func close()
}
