import SystemPackage

/// A mechanism that starts a ``SandboxSpec`` as a ``SandboxProcess``.
///
/// Every backend honours the same spec; `namespaces` is the default, `none` an explicit opt-in.
/// `spawn` returns once the runtime's `execve` succeeded (so an exec failure is an error, never a
/// runtime that exited 1). `namespaces` and `bubblewrap` wait for the setup without blocking a
/// cooperative-pool thread (bounded by their 5 s deadline); `none` spawns on the calling thread.
public protocol SandboxBackend: Sendable {
    var kind: SandboxBackendKind { get }
    /// Starts `spec`.
    ///
    /// `hostID`, when given, was leased ahead of time from the allocator the backend was built with (so the
    /// caller could `chown` what the sandbox must reach, such as its `host.sock`); the spawn consumes the
    /// lease: the started process releases the id once reaped, a failed spawn drops the lease (which
    /// releases it). Backends that run the process as the caller just drop it.
    func spawn(_ spec: SandboxSpec, hostID: consuming HostIDLease?) async throws(SandboxError) -> SandboxProcess
}

extension SandboxBackend {
    /// Starts `spec` with a host id the backend picks itself.
    public func spawn(_ spec: SandboxSpec) async throws(SandboxError) -> SandboxProcess {
        try await spawn(spec, hostID: nil)
    }
}

/// Resolves the shared libraries of a spec's executable: the seam between backends and
/// ``SharedLibraryResolver`` (its conformance is ``SharedLibraryResolver/layout(for:libraryDirectory:)``).
///
/// Called only when ``SandboxSpec/bindSharedLibraries`` is set. Backends mount the layout's binds
/// read-only after the spec's own binds, then create its symbolic links.
public protocol SharedLibraryProvider: Sendable {
    /// What `spec.executable` needs mounted; ``SharedLibraryLayout/none`` for a static binary.
    /// Errors are reported as a setup failure at stage `libraries` (a ``SandboxError`` is passed on).
    func libraryLayout(for spec: SandboxSpec) throws -> SharedLibraryLayout
}
