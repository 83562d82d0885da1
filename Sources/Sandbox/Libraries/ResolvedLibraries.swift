public import SystemPackage

/// What a dynamically linked executable needs from the host to run: its interpreter and shared libraries.
///
/// Empty for static executables. Paths in ``ProgramInterpreter/hostPath`` and ``SharedLibrary/hostPath``
/// are real files (symlinks resolved): the bind sources.
public struct ResolvedLibraries: Sendable, Hashable {
    /// `PT_INTERP`; `nil` for a static executable.
    public var interpreter: ProgramInterpreter?
    /// Every library the loader maps at startup, each once, in the loader's breadth-first load order.
    public var libraries: [SharedLibrary]

    public init(interpreter: ProgramInterpreter?, libraries: [SharedLibrary]) {
        self.interpreter = interpreter
        self.libraries = libraries
    }

    /// Nothing to bind: a static executable.
    public static let none = ResolvedLibraries(interpreter: nil, libraries: [])

    public var isEmpty: Bool { interpreter == nil && libraries.isEmpty }
}

/// The program interpreter (`ld-linux-*.so.*`) named by `PT_INTERP`.
public struct ProgramInterpreter: Sendable, Hashable {
    /// `PT_INTERP` as written, e.g. `/lib64/ld-linux-x86-64.so.2`: the kernel opens exactly this path,
    /// inside the sandbox too.
    public var path: FilePath
    /// The real host file behind ``path``.
    public var hostPath: FilePath

    public init(path: FilePath, hostPath: FilePath) {
        self.path = path
        self.hostPath = hostPath
    }
}

/// One shared library the loader maps.
public struct SharedLibrary: Sendable, Hashable {
    /// The real host file (symlinks resolved).
    public var hostPath: FilePath
    /// The `DT_NEEDED` names the loader looks this file up by, first the one that loaded it. Each must exist
    /// as a file name in the sandbox; usually there is exactly one and it equals ``soname``.
    public var names: [String]
    /// The library's own `DT_SONAME`, if it has one.
    public var soname: String?
    /// Where the search found it, before resolving symlinks (its directory is the library's `$ORIGIN`).
    public var foundPath: FilePath
    /// The object whose `DT_NEEDED` first asked for it.
    public var neededBy: FilePath

    public init(hostPath: FilePath, names: [String], soname: String?, foundPath: FilePath, neededBy: FilePath) {
        precondition(!names.isEmpty, "a library is always needed under at least one name")
        self.hostPath = hostPath
        self.names = names
        self.soname = soname
        self.foundPath = foundPath
        self.neededBy = neededBy
    }

    /// The name that first loaded it.
    public var name: String { names[0] }
}
