/// ld.so's startup dependency walk over host files: breadth-first from the executable, each object once.
///
/// For a `DT_NEEDED` name without `/`, the directories tried are, in order: the `DT_RPATH` of the needing
/// object and of each object up its loader chain to the executable (only when the needing object has no
/// `DT_RUNPATH`), `LD_LIBRARY_PATH`, the needing object's own `DT_RUNPATH`, `ld.so.cache`, then the default
/// directories (the last two not when the needing object has `DF_1_NODEFLIB`). A candidate of another
/// ELF class or machine is skipped as ld.so does; any other unusable candidate is an error, as in ld.so.
///
/// An object already loaded satisfies a name that matches a name it was loaded by, the path it was found
/// at, or its `DT_SONAME`; a search that lands on an already-loaded file (same device and inode) adds the
/// name to that object instead of loading it twice.
struct DependencyWalk {
    struct Object {
        var elf: ELFObject
        /// The path it was found at (for the executable: as given).
        var path: String
        /// What `$ORIGIN` means for this object's names and search paths.
        var origin: String
        var loader: Int?
        var names: [String]
        var rpathDirectories: [String]
        var runpathDirectories: [String]
    }

    private struct Candidate {
        var path: String
        var file: LibraryFile
        var elf: ELFObject
    }

    private enum Loaded {
        case interpreter
        case object(Int)
    }

    let machine: ELFMachine
    private let libraryPathDirectories: [String]
    private let defaultDirectories: [String]
    private let maximumObjects: Int
    private(set) var objects: [Object] = []
    private var loadedByName: [String: Loaded] = [:]
    private var loadedByIdentity: [FileIdentity: Loaded] = [:]

    /// Starts from the executable, with the interpreter already counted as loaded (it is ld.so itself).
    init(
        executable: ELFObject,
        executablePath: String,
        executableIdentity: FileIdentity,
        executableOrigin: String,
        interpreter: ELFObject,
        interpreterPath: String,
        interpreterIdentity: FileIdentity,
        libraryPath: String?,
        defaultDirectories: [String],
        maximumObjects: Int
    ) {
        machine = executable.machine
        self.defaultDirectories = defaultDirectories
        self.maximumObjects = maximumObjects
        libraryPathDirectories = libraryPath.map {
            LoaderSearchPath.directories($0, separatedBy: LoaderSearchPath.environmentSeparators, origin: executableOrigin, machine: executable.machine)
        } ?? []
        register(name: interpreterPath, as: .interpreter)
        if let soname = interpreter.soname { register(name: soname, as: .interpreter) }
        loadedByIdentity[interpreterIdentity] = .interpreter
        append(executable, path: executablePath, origin: executableOrigin, identity: executableIdentity, name: nil, loader: nil)
    }

    /// Loads every object reachable through `DT_NEEDED`, breadth first.
    mutating func run(loaderCache: () throws(SharedLibraryError) -> LoaderCache) throws(SharedLibraryError) {
        var next = 0
        while next < objects.count {
            let needing = next
            next += 1
            for name in objects[needing].elf.needed where loadedByName[name] == nil {
                let candidate = try find(name, neededBy: needing, loaderCache: loaderCache)
                if let loaded = loadedByIdentity[candidate.file.identity] {
                    register(name: name, as: loaded)
                    if case .object(let index) = loaded, index > 0 { objects[index].names.append(name) }
                    continue
                }
                guard objects.count < maximumObjects else {
                    throw SharedLibraryError(.limitExceeded, "more than \(maximumObjects - 1) libraries", path: objects[0].path)
                }
                append(
                    candidate.elf,
                    path: candidate.path,
                    origin: LoaderSearchPath.parentDirectory(of: candidate.path),
                    identity: candidate.file.identity,
                    name: name,
                    loader: needing
                )
            }
        }
    }

    private mutating func append(_ elf: ELFObject, path: String, origin: String, identity: FileIdentity, name: String?, loader: Int?) {
        let index = objects.count
        func directories(_ value: String?) -> [String] {
            value.map { LoaderSearchPath.directories($0, separatedBy: LoaderSearchPath.pathListSeparators, origin: origin, machine: machine) } ?? []
        }
        objects.append(Object(
            elf: elf,
            path: path,
            origin: origin,
            loader: loader,
            names: name.map { [$0] } ?? [],
            rpathDirectories: directories(elf.rpath),
            runpathDirectories: directories(elf.runpath)
        ))
        if let name { register(name: name, as: .object(index)) }
        if loader != nil { register(name: path, as: .object(index)) }
        if let soname = elf.soname { register(name: soname, as: .object(index)) }
        loadedByIdentity[identity] = loadedByIdentity[identity] ?? .object(index)
    }

    private mutating func register(name: String, as loaded: Loaded) {
        if loadedByName[name] == nil { loadedByName[name] = loaded }
    }

    private func find(_ name: String, neededBy needing: Int, loaderCache: () throws(SharedLibraryError) -> LoaderCache) throws(SharedLibraryError) -> Candidate {
        let requester = objects[needing]
        if name.utf8.contains(UInt8(ascii: "/")) {
            guard let path = LoaderSearchPath.substitutingTokens(in: name, origin: requester.origin, machine: machine), path.hasPrefix("/") else {
                throw notFound(name, neededBy: requester, searched: ["(relative paths depend on the runtime's working directory)"])
            }
            guard let candidate = try candidate(at: path) else { throw notFound(name, neededBy: requester, searched: [path]) }
            return candidate
        }

        var searched: [String] = []
        func search(_ directories: [String]) throws(SharedLibraryError) -> Candidate? {
            for directory in directories {
                searched.append(directory)
                if let found = try candidate(at: LoaderSearchPath.join(directory, name)) { return found }
            }
            return nil
        }

        if requester.elf.runpath == nil {
            var chain: Int? = needing
            while let index = chain {
                if let found = try search(objects[index].rpathDirectories) { return found }
                chain = objects[index].loader
            }
        }
        if let found = try search(libraryPathDirectories) { return found }
        if let found = try search(requester.runpathDirectories) { return found }
        if !requester.elf.noDefaultLibraries {
            searched.append("ld.so.cache")
            if let cached = try loaderCache().path(for: name, machine: machine), let found = try candidate(at: cached) {
                return found
            }
            if let found = try search(defaultDirectories) { return found }
        }
        throw notFound(name, neededBy: requester, searched: searched)
    }

    /// The usable library at `path`, `nil` if absent or built for another class or machine.
    private func candidate(at path: String) throws(SharedLibraryError) -> Candidate? {
        guard let file = try LibraryFile.openIfPresent(path) else { return nil }
        let header = try ELFHeader(file: file)
        guard header.isELF64, header.machine == machine else { return nil }
        guard header.type == .sharedObject else {
            throw SharedLibraryError(.unsupportedObjectType, "found as a library but is not a shared object (ET_DYN)", path: path, offset: 16)
        }
        return Candidate(path: path, file: file, elf: try ELFObject(file: file, header: header))
    }

    private func notFound(_ name: String, neededBy requester: Object, searched: [String]) -> SharedLibraryError {
        let locations = searched.isEmpty ? "nowhere" : searched.joined(separator: ", ")
        return SharedLibraryError(.libraryNotFound, "\(name) (needed by \(requester.path)) not found; searched \(locations)", path: requester.path)
    }
}
