import Logging
import Sandbox
import SystemPackage

/// Starts a runtime without a sandbox (upstream's `InsecureNoSandbox`; the `none` backend).
///
/// The runtime runs as the daemon's user with the host's filesystem and network. Data files never go to
/// their literal target paths on the host (an API client could otherwise overwrite any host file as
/// root): they are written under the runtime's private directory, at `<dir>/data/<target>`, and the
/// runtime learns that directory from ``dataDirectoryVariable``.
enum UnsandboxedRuntime {
    static let dataDirectoryVariable = "SANDBOX_DATA_DIR"

    static func spawn(_ spec: SandboxSpec, directory: FilePath, logger: Logger) async throws -> SandboxProcess {
        var spec = spec
        let dataDirectory = directory.appending("data")
        if !spec.dataFiles.isEmpty { spec.environment[dataDirectoryVariable] = dataDirectory.string }
        return try await UnsandboxedBackend(dataDirectory: dataDirectory, logger: logger).spawn(spec)
    }
}
