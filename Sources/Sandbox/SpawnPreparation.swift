/// What every sandboxing backend checks and derives from a spec before it starts anything.
///
/// One place for the checks both `namespaces` and `bubblewrap` make, so the two backends refuse the
/// same specs with the same errors: the executable must exist and be runnable (an exec error, 126/127,
/// never a library error), hostname, arguments, environment and inherited descriptors must be valid,
/// and the shared libraries are resolved.
struct SpawnPreparation {
    /// The executable's real host path (symlinks resolved).
    let executable: String
    /// `KEY=value` entries, the runtime's whole environment.
    let environment: [String]
    let inheritedDescriptors: [Int32]
    let libraries: SharedLibraryLayout

    init(_ spec: SandboxSpec, libraries provider: (any SharedLibraryProvider)?) throws(SandboxError) {
        switch SpawnSupport.realPath(spec.executable) {
        case .success(let path): executable = path
        case .failure(let errno): throw SandboxError.exec(errno, path: spec.executable.string)
        }
        guard spec.hostname.utf8.count <= 64, !spec.hostname.utf8.contains(0) else {
            throw SandboxError(.invalidSpec, "hostname longer than 64 bytes")
        }
        environment = try SpawnSupport.environment(spec.environment)
        try SpawnSupport.checkArguments(spec.arguments)
        inheritedDescriptors = try SpawnSupport.inheritedDescriptors(spec.inheritedDescriptors)
        try SpawnSupport.checkRunnable(executable, as: spec)
        guard spec.bindSharedLibraries, let provider else {
            libraries = .none
            return
        }
        do {
            libraries = try provider.libraryLayout(for: spec)
        } catch let error as SandboxError {
            throw error
        } catch {
            throw SandboxError(.setupFailed, "resolving shared libraries failed: \(error)", stage: "libraries")
        }
    }
}

extension HostIDAllocator {
    /// A free id, or ``SandboxError/Code/hostIDsExhausted`` when the whole range is in use.
    func reserve() throws(SandboxError) -> UInt32 {
        guard let id = acquire() else {
            throw SandboxError(.hostIDsExhausted, "all \(range.count) host ids from \(range.base) are in use")
        }
        return id
    }

    /// `reserved`, or a fresh lease (``SandboxError/Code/hostIDsExhausted`` when the range is in use).
    func lease(_ reserved: consuming HostIDLease?) throws(SandboxError) -> HostIDLease {
        switch consume reserved {
        case .some(let lease): return lease
        case .none:
            guard let lease = lease() else {
                throw SandboxError(.hostIDsExhausted, "all \(range.count) host ids from \(range.base) are in use")
            }
            return lease
        }
    }
}
