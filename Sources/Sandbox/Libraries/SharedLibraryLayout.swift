public import SystemPackage

/// Where resolved libraries go inside a sandbox: read-only binds plus the symlinks the root needs.
///
/// Libraries are bound at `<libraryDirectory>/<name>` for each name the loader looks them up by, the
/// interpreter at its `PT_INTERP` path (normally `/lib64/ld-linux-x86-64.so.2`), and `/usr/lib64` is a
/// symlink to `lib` (relative, so it resolves to `/usr/lib` before and after `pivot_root`). A sandbox has
/// no `ld.so.cache` and the runtime's `DT_RUNPATH` directories do not exist there, so ld.so falls back to
/// its built-in directories; on Debian 12 (glibc 2.36) the last of them is `/usr/lib` — verified by
/// running binaries in a root holding only this layout. `DT_NEEDED` names containing `/` are bound at that
/// absolute path, since ld.so opens them directly.
public struct SharedLibraryLayout: Sendable, Hashable {
    /// Where libraries go: a directory the loader searches by default and the sandbox otherwise lacks.
    public static let defaultLibraryDirectory: FilePath = "/usr/lib"

    /// Read-only binds, interpreter first; no two share a target.
    public var binds: [BindMount]
    /// Symlinks to create in the sandbox root (after the binds' parent directories exist).
    public var symbolicLinks: [SymbolicLink]

    public init(binds: [BindMount], symbolicLinks: [SymbolicLink]) {
        self.binds = binds
        self.symbolicLinks = symbolicLinks
    }

    /// Nothing to mount (a static executable).
    public static let none = SharedLibraryLayout(binds: [], symbolicLinks: [])

    /// The layout for `resolved`; empty for a static executable.
    public init(_ resolved: ResolvedLibraries, libraryDirectory: FilePath = Self.defaultLibraryDirectory) {
        binds = []
        symbolicLinks = []
        guard !resolved.isEmpty else { return }
        var targets: Set<FilePath> = []
        func bind(_ source: FilePath, at target: FilePath) {
            if targets.insert(target).inserted {
                binds.append(BindMount(source: source, target: target, mode: .readOnly))
            }
        }
        if let interpreter = resolved.interpreter {
            bind(interpreter.hostPath, at: Self.sandboxTarget(interpreter.path))
        }
        for library in resolved.libraries {
            for name in library.names {
                if name.utf8.contains(UInt8(ascii: "/")) {
                    bind(library.hostPath, at: Self.sandboxTarget(FilePath("/").pushing(FilePath(name))))
                } else {
                    bind(library.hostPath, at: libraryDirectory.appending(name))
                }
            }
        }
        symbolicLinks = [Self.usrLib64]
    }

    /// `/usr/lib64` → `lib`.
    public static let usrLib64 = SymbolicLink(path: "/usr/lib64", destination: "lib")

    /// `path` lexically normalised, with a `/usr/lib64` prefix rewritten to `/usr/lib` (that directory is a
    /// symlink in the sandbox, so nothing can be mounted below it).
    private static func sandboxTarget(_ path: FilePath) -> FilePath {
        let normalized = path.lexicallyNormalized()
        let link = usrLib64.path
        guard normalized.starts(with: link), normalized != link else { return normalized }
        var rewritten = link.removingLastComponent().appending(usrLib64.destination.components)
        rewritten.append(normalized.components.dropFirst(link.components.count))
        return rewritten
    }
}

/// A symbolic link inside the sandbox root.
public struct SymbolicLink: Sendable, Hashable {
    /// Absolute path of the link inside the sandbox.
    public var path: FilePath
    /// The link's contents; relative destinations resolve from the link's directory.
    public var destination: FilePath

    public init(path: FilePath, destination: FilePath) {
        self.path = path
        self.destination = destination
    }
}

extension SharedLibraryResolver: SharedLibraryProvider {
    public func libraryLayout(for spec: SandboxSpec) throws -> SharedLibraryLayout {
        try layout(for: spec)
    }

    /// The library layout for `spec`'s executable, resolved with the `LD_LIBRARY_PATH` the runtime will
    /// get; empty when ``SandboxSpec/bindSharedLibraries`` is off or the executable is static.
    public func layout(
        for spec: SandboxSpec,
        libraryDirectory: FilePath = SharedLibraryLayout.defaultLibraryDirectory
    ) throws(SharedLibraryError) -> SharedLibraryLayout {
        guard spec.bindSharedLibraries else { return .none }
        let resolved = try resolve(executable: spec.executable, libraryPath: spec.environment["LD_LIBRARY_PATH"])
        return SharedLibraryLayout(resolved, libraryDirectory: libraryDirectory)
    }
}
