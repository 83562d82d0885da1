public import SystemPackage

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

/// The seam for shared libraries: what a dynamically linked executable needs inside the sandbox.
///
/// The resolver (`Sources/Sandbox/Libraries`) conforms to ``SharedLibraryProvider``; the namespaces
/// backend calls it when ``SandboxSpec/bindSharedLibraries`` is set and mounts the result
/// read-only after the spec's own binds: every ``binds`` entry (library files or directories,
/// e.g. host `/usr/lib/x86_64-linux-gnu/libc.so.6` → `/usr/lib/libc.so.6`, the loader → `/lib64/…`),
/// then every ``symlinks`` entry (e.g. `/usr/lib64` → `lib`). Bind modes are forced to read-only.
public struct SharedLibraryMounts: Sendable, Hashable {
    public var binds: [BindMount]
    public var symlinks: [SymbolicLink]

    public init(binds: [BindMount] = [], symlinks: [SymbolicLink] = []) {
        self.binds = binds
        self.symlinks = symlinks
    }

    public static let none = SharedLibraryMounts()
}

/// A symlink created inside the sandbox: `path` → `destination` (the link's text, used verbatim).
public struct SymbolicLink: Sendable, Hashable {
    public var path: FilePath
    public var destination: FilePath

    public init(path: FilePath, destination: FilePath) {
        self.path = path
        self.destination = destination
    }
}

/// Resolves the shared libraries of a spec's executable (implemented by the library resolver).
///
/// Called only when ``SandboxSpec/bindSharedLibraries`` is set. With the resolver's
/// `SharedLibraryResolver.layout(for:)` the conformance is a field-by-field copy of its
/// `SharedLibraryLayout` (`binds`, `symbolicLinks`).
public protocol SharedLibraryProvider: Sendable {
    /// What `spec.executable` needs mounted; ``SharedLibraryMounts/none`` for a static binary.
    /// Errors are reported as a setup failure at stage `libraries` (a ``SandboxError`` is passed on).
    func libraryMounts(for spec: SandboxSpec) throws -> SharedLibraryMounts
}
