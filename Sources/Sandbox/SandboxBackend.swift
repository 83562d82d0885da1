import SystemPackage

/// A mechanism that starts a ``SandboxSpec`` as a ``SandboxProcess``.
///
/// Every backend honours the same spec; `namespaces` is the default, `none` an explicit opt-in.
/// `spawn` returns once the runtime's `execve` succeeded (so an exec failure is an error, never a
/// runtime that exited 1); it may block the calling thread for the setup (about 1.5 ms for
/// `namespaces`, bounded by its 5 s deadline).
public protocol SandboxBackend: Sendable {
    var kind: SandboxBackendKind { get }
    func spawn(_ spec: SandboxSpec) async throws(SandboxError) -> SandboxProcess
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
