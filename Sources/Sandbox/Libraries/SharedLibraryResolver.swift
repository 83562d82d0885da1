import Synchronization
public import SystemPackage

/// Finds the host files a dynamically linked executable loads at startup, the way glibc's ld.so would.
///
/// Reads only headers, program headers, the dynamic section and the strings it names, with bounded
/// `pread`s. `ld.so.cache` is parsed once per resolver, on first need, and reused; a resolver is safe to
/// share between tasks. Libraries a runtime `dlopen`s are invisible to this (as to `ldd`).
///
/// Results are remembered per executable and `LD_LIBRARY_PATH`, and reused while the executable and every
/// file of the result are unchanged (same device, inode, size and mtime), so restarting a runtime costs a
/// few `stat`s instead of a resolution. Like the loader cache, this assumes no new library appears earlier
/// in the search path during the resolver's life; make a new resolver to see such changes.
///
/// Not modelled: `glibc-hwcaps`/legacy hwcap subdirectories (the baseline library, which runs everywhere,
/// is chosen instead), `LD_PRELOAD`, `/etc/ld.so.preload`, and empty or relative search-path entries.
public final class SharedLibraryResolver: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// The loader cache to consult; `nil` to search without one. A missing file counts as empty.
        public var loaderCachePath: FilePath?
        /// The loader's built-in directories; `nil` for glibc's on Debian for the executable's machine
        /// (``SharedLibraryResolver/debianDefaultDirectories(multiarchTuple:)``).
        public var defaultDirectories: [FilePath]?
        /// Upper bound on the libraries of one executable.
        public var maximumLibraries: Int

        public init(
            loaderCachePath: FilePath? = "/etc/ld.so.cache",
            defaultDirectories: [FilePath]? = nil,
            maximumLibraries: Int = 1024
        ) {
            self.loaderCachePath = loaderCachePath
            self.defaultDirectories = defaultDirectories
            self.maximumLibraries = maximumLibraries
        }
    }

    public let configuration: Configuration
    private let loaderCache = Mutex<LoaderCache?>(nil)
    private let memo = Mutex<[MemoKey: Memo]>([:])
    /// Upper bound on remembered results; the memo starts over beyond it.
    private static let memoLimit = 256

    private struct MemoKey: Hashable {
        var executable: String
        var libraryPath: String?
    }

    private struct Memo {
        var fingerprints: [String: FileFingerprint]
        var result: ResolvedLibraries
    }

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The interpreter and libraries `executable` needs; ``ResolvedLibraries/none`` for a static executable.
    ///
    /// - Parameters:
    ///   - executable: host path of an ELF64 x86_64 or aarch64 executable (or PIE/shared object).
    ///   - libraryPath: the `LD_LIBRARY_PATH` the runtime will get, if any.
    public func resolve(executable: FilePath, libraryPath: String? = nil) throws(SharedLibraryError) -> ResolvedLibraries {
        let key = MemoKey(executable: executable.string, libraryPath: libraryPath)
        if let remembered = memo.withLock({ $0[key] }),
           remembered.fingerprints.allSatisfy({ FileFingerprint(path: $0.key) == $0.value }) {
            return remembered.result
        }
        let result = try resolveUncached(executable: executable, libraryPath: libraryPath)
        var files = [executable.string]
        if let interpreter = result.interpreter { files.append(interpreter.hostPath.string) }
        files += result.libraries.map(\.hostPath.string)
        var fingerprints: [String: FileFingerprint] = [:]
        for file in files {
            guard let fingerprint = FileFingerprint(path: file) else { return result }
            fingerprints[file] = fingerprint
        }
        memo.withLock { memo in
            if memo.count >= Self.memoLimit { memo.removeAll() }
            memo[key] = Memo(fingerprints: fingerprints, result: result)
        }
        return result
    }

    private func resolveUncached(executable: FilePath, libraryPath: String?) throws(SharedLibraryError) -> ResolvedLibraries {
        let executablePath = executable.string
        let file = try LibraryFile(executablePath)
        let header = try ELFHeader(file: file)
        try header.requireSupported(executablePath)
        guard header.type == .executable || header.type == .sharedObject else {
            throw SharedLibraryError(.unsupportedObjectType, "not an executable (ET_EXEC or ET_DYN)", path: executable, offset: 16)
        }
        let elf = try ELFObject(file: file, header: header)
        guard let interpreterPath = elf.interpreter else { return .none }

        let interpreter = try loadInterpreter(interpreterPath, for: elf, executablePath: executablePath)
        var walk = DependencyWalk(
            executable: elf,
            executablePath: executablePath,
            executableIdentity: file.identity,
            executableOrigin: LoaderSearchPath.parentDirectory(of: try canonicalPath(executablePath)),
            interpreter: interpreter.elf,
            interpreterPath: interpreterPath,
            interpreterIdentity: interpreter.file.identity,
            libraryPath: libraryPath,
            defaultDirectories: configuration.defaultDirectories?.map(\.string)
                ?? Self.debianDefaultDirectories(multiarchTuple: elf.machine.multiarchTuple).map(\.string),
            maximumObjects: configuration.maximumLibraries + 1
        )
        try walk.run(loaderCache: cachedLoaderCache)

        var libraries: [SharedLibrary] = []
        libraries.reserveCapacity(walk.objects.count - 1)
        for object in walk.objects.dropFirst() {
            libraries.append(SharedLibrary(
                hostPath: FilePath(try canonicalPath(object.path)),
                names: object.names,
                soname: object.elf.soname,
                foundPath: FilePath(object.path),
                neededBy: FilePath(walk.objects[object.loader ?? 0].path)
            ))
        }
        return ResolvedLibraries(
            interpreter: ProgramInterpreter(path: FilePath(interpreterPath), hostPath: FilePath(try canonicalPath(interpreterPath))),
            libraries: libraries
        )
    }

    /// glibc's built-in search path on Debian, as `ld.so --help` prints it on Debian 12 (glibc 2.36):
    /// `/lib/<tuple>`, `/usr/lib/<tuple>`, `/lib`, `/usr/lib`. It has no `lib64` directory.
    public static func debianDefaultDirectories(multiarchTuple: String) -> [FilePath] {
        ["/lib/\(multiarchTuple)", "/usr/lib/\(multiarchTuple)", "/lib", "/usr/lib"].map { FilePath($0) }
    }

    private func loadInterpreter(_ path: String, for executable: ELFObject, executablePath: String) throws(SharedLibraryError) -> (file: LibraryFile, elf: ELFObject) {
        guard path.hasPrefix("/") else {
            throw SharedLibraryError(.malformedELF, "PT_INTERP \"\(path)\" is not an absolute path", path: executablePath)
        }
        let file: LibraryFile
        do {
            file = try LibraryFile(path)
        } catch {
            var explained = error
            explained.message = "program interpreter of \(executablePath) is unusable: \(error.message)"
            throw explained
        }
        let header = try ELFHeader(file: file)
        try header.requireSupported(path)
        guard header.machine == executable.machine else {
            throw SharedLibraryError(.unsupportedMachine, "interpreter is for ELF machine \(header.machineNumber), the executable for \(executable.machine.rawValue)", path: path, offset: 18)
        }
        return (file, try ELFObject(file: file, header: header))
    }

    private func cachedLoaderCache() throws(SharedLibraryError) -> LoaderCache {
        guard let path = configuration.loaderCachePath else { return .empty }
        return try loaderCache.withLock { (cache: inout LoaderCache?) throws(SharedLibraryError) -> LoaderCache in
            if let cache { return cache }
            let loaded = try LoaderCache.load(path: path.string)
            cache = loaded
            return loaded
        }
    }
}
