#if canImport(Glibc)
import Glibc
#endif
import Foundation
public import Logging
import SystemCalls

/// A bundle exploded under `<state>/bundles/<manifest hash>/`, verified against the bundle.
public struct ExplodedBundle: Sendable {
    public let bundlePath: String
    public let directory: String
    public let manifest: BundleManifest
    public let manifestHashHex: String

    /// The host path of a file of the bundle.
    public func path(of file: String) -> String { "\(directory)/\(file)" }
}

/// A component chosen for running: what the daemon needs from a bundle.
public struct SelectedComponent: Sendable, Hashable {
    public let id: ComponentID
    /// The ELF file name inside the bundle.
    public let executable: String
    public let version: ComponentVersion
    /// Upstream's `IsNetworkAllowed` (ROFL only).
    public let networkAllowed: Bool
}

extension BundleManifest {
    /// The component `text` (`ronl` or `rofl.NAME`) names, if sandboxd can run it.
    ///
    /// - Throws: ``BundleError/Code/unknownComponent`` for a malformed id or one the manifest lacks,
    ///   ``BundleError/Code/unsupportedComponent`` for a component with only SGX or TDX metadata.
    public func select(component text: String) throws(BundleError) -> SelectedComponent {
        guard let id = ComponentID(parsing: text) else {
            throw BundleError(.unknownComponent, "\"\(text)\" is not a component id (ronl or rofl.NAME)")
        }
        guard let component = component(id) else {
            let known = availableComponents.map(\.id.text).joined(separator: ", ")
            throw BundleError(.unknownComponent, "the bundle has no component \(id.text) (it has: \(known.isEmpty ? "none" : known))")
        }
        guard let executable = component.elfExecutable else {
            throw BundleError(
                .unsupportedComponent,
                "component \(id.text) has only \(component.teeKind.uppercased()) metadata and no ELF executable; sandboxd runs ELF components only"
            )
        }
        return SelectedComponent(
            id: id, executable: executable, version: component.version, networkAllowed: component.isNetworkAllowed
        )
    }
}

/// Explodes bundles idempotently to `<root>/<manifest hash>/` and re-verifies what is already there.
///
/// A new explode goes to a temporary directory (entries created exclusively, digests checked while
/// writing), then is renamed into place. An existing directory is never trusted: every file is hashed
/// and compared with the bundle's digests, extra or missing files, links, wrong owners or writable modes
/// fail it, and a failed directory is replaced from the bundle. Files are root-owned, `0644`, the
/// components' executables `0755`, directories `0755`: readable and executable by sandbox uids, writable
/// by nobody but root.
public struct BundleStore: Sendable {
    public let root: String
    public let limits: BundleLimits
    private let logger: Logger

    /// - Parameter root: usually `<state directory>/bundles`; created (mode 0711) when missing.
    public init(root: String, limits: BundleLimits = BundleLimits(), logger: Logger) {
        self.root = root
        self.limits = limits
        self.logger = logger
    }

    /// Opens, validates and explodes `path` (pinned to `pinnedManifestHash` when given).
    public func prepare(bundle path: String, pinnedManifestHash: [UInt8]? = nil) throws(BundleError) -> ExplodedBundle {
        try ensureRoot()
        // Read the manifest (and check the pin) first: the directory name depends on it.
        let (_, hash) = try RuntimeBundle.readManifest(path: path, limits: limits)
        if let pinnedManifestHash, pinnedManifestHash != hash {
            throw BundleError(
                .manifestHashMismatch,
                "manifest hash of \(path) is \(Hex.encode(hash)), not the pinned \(Hex.encode(pinnedManifestHash))"
            )
        }
        let hex = Hex.encode(hash)
        let final = "\(root)/\(hex)"
        if exists(final) {
            // Read and validate the whole bundle, then check the directory against what was read.
            let probe = try RuntimeBundle.open(path: path, limits: limits, pinnedManifestHash: hash)
            try probe.validate()
            do {
                try verify(directory: final, against: probe)
                logger.debug("exploded bundle verified", metadata: ["bundle": "\(path)", "directory": "\(final)"])
                return ExplodedBundle(bundlePath: path, directory: final, manifest: probe.manifest, manifestHashHex: hex)
            } catch {
                logger.warning(
                    "exploded bundle failed verification; extracting it again",
                    metadata: ["directory": "\(final)", "error": "\(error.message)"]
                )
                try remove(final)
            }
        }
        let temporary = "\(root)/.tmp-\(hex)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do throws(BundleError) {
            try makeDirectory(temporary, mode: 0o700)
            try makeDirectory("\(temporary)/META-INF", mode: 0o700)
            let bundle = try RuntimeBundle.open(
                path: path, limits: limits, pinnedManifestHash: hash, extractingTo: temporary
            )
            try bundle.validate()
            try applyModes(temporary, bundle)
            if rename(temporary, final) != 0 {
                let code = errno
                guard code == EEXIST || code == ENOTEMPTY else {
                    throw BundleError(.explodeFailed, "cannot rename \(temporary) to \(final): \(String(cString: strerror(code)))")
                }
                // Another explode of the same bundle won the race: theirs must verify too.
                try remove(temporary)
                try verify(directory: final, against: bundle)
            }
            logger.info("bundle exploded", metadata: ["bundle": "\(path)", "directory": "\(final)"])
            return ExplodedBundle(bundlePath: path, directory: final, manifest: bundle.manifest, manifestHashHex: hex)
        } catch {
            try? remove(temporary)
            throw error
        }
    }

    /// Whether an exploded directory exists for `manifestHashHex` (for tests and status).
    public func directory(for manifestHashHex: String) -> String { "\(root)/\(manifestHashHex)" }

    // MARK: - Verification

    /// Checks `directory` holds exactly the bundle's files, with their digests, owners and modes.
    func verify(directory: String, against bundle: RuntimeBundle) throws(BundleError) {
        func fail(_ message: String) -> BundleError { BundleError(.explodeFailed, "\(directory): \(message)") }
        let executables = executableNames(bundle.manifest)
        try checkNode(directory, directory: true, executable: true, fail: fail)
        try checkNode("\(directory)/META-INF", directory: true, executable: true, fail: fail)
        let expected = Set(bundle.fileDigests.map(\.name))
        let top = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let meta = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/META-INF")) ?? []
        let actual = Set(top.filter { $0 != "META-INF" } + meta.map { "META-INF/\($0)" })
        if let extra = actual.subtracting(expected).sorted().first { throw fail("unexpected file '\(extra)'") }
        if let missing = expected.subtracting(actual).sorted().first { throw fail("missing file '\(missing)'") }
        for (name, digest) in bundle.fileDigests {
            let path = "\(directory)/\(name)"
            try checkNode(path, directory: false, executable: executables.contains(name), fail: fail)
            guard try hashFile(path) == digest else { throw fail("'\(name)' does not match the bundle's digest") }
        }
    }

    private func checkNode(
        _ path: String, directory: Bool, executable: Bool, fail: (String) -> BundleError
    ) throws(BundleError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw fail("cannot stat \(path)") }
        let type = info.st_mode & S_IFMT
        guard type == (directory ? S_IFDIR : S_IFREG) else { throw fail("\(path) is not a \(directory ? "directory" : "regular file")") }
        guard info.st_uid == geteuid() else { throw fail("\(path) is owned by uid \(info.st_uid)") }
        let wanted: mode_t = directory || executable ? 0o755 : 0o644
        guard info.st_mode & 0o7777 == wanted else {
            throw fail("\(path) has mode \(String(info.st_mode & 0o7777, radix: 8)), expected \(String(wanted, radix: 8))")
        }
    }

    private func hashFile(_ path: String) throws(BundleError) -> [UInt8] {
        let fd: Int32
        do {
            fd = try retryingInterrupts("open(\(path))") { open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
        } catch {
            throw BundleError(.explodeFailed, "cannot open \(path): \(error)")
        }
        defer { close(fd) }
        var hasher = SHA512_256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let got: Int
            do {
                got = try retryingInterrupts("read(\(path))") { read(fd, buffer.baseAddress, buffer.count) }
            } catch {
                throw BundleError(.explodeFailed, "cannot read \(path): \(error)")
            }
            if got == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
        }
        return hasher.finalize()
    }

    // MARK: - Helpers

    private func executableNames(_ manifest: BundleManifest) -> Set<String> {
        Set(manifest.availableComponents.compactMap(\.elfExecutable))
    }

    private func applyModes(_ directory: String, _ bundle: RuntimeBundle) throws(BundleError) {
        let executables = executableNames(bundle.manifest)
        for (name, _) in bundle.fileDigests {
            try changeMode("\(directory)/\(name)", executables.contains(name) ? 0o755 : 0o644)
        }
        try changeMode("\(directory)/META-INF", 0o755)
        try changeMode(directory, 0o755)
    }

    private func changeMode(_ path: String, _ mode: mode_t) throws(BundleError) {
        guard chmod(path, mode) == 0 else {
            throw BundleError(.explodeFailed, "cannot chmod \(path): \(String(cString: strerror(errno)))")
        }
    }

    private func ensureRoot() throws(BundleError) {
        // Sandbox uids open the component's executable by its host path (the entrypoint bind), so every
        // directory above it must be traversable: the parent (the state directory, 0700 by default)
        // gets search permission only (0711: nothing in it can be listed, runtimes/ stays 0700).
        let parent = String(root[..<(root.lastIndex(of: "/") ?? root.startIndex)])
        var parentInfo = stat()
        if !parent.isEmpty, stat(parent, &parentInfo) == 0, parentInfo.st_mode & 0o011 != 0o011 {
            let mode = (parentInfo.st_mode & 0o7777) | 0o011
            guard chmod(parent, mode) == 0 else {
                throw BundleError(.explodeFailed, "cannot make \(parent) traversable: \(String(cString: strerror(errno)))")
            }
            logger.info("state directory made traversable for sandboxed bundle executables", metadata: [
                "directory": "\(parent)", "mode": "\(String(mode, radix: 8))",
            ])
        }
        if mkdir(root, 0o711) != 0, errno != EEXIST {
            throw BundleError(.explodeFailed, "cannot create \(root): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard lstat(root, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw BundleError(.explodeFailed, "\(root) is not a directory")
        }
        if info.st_mode & 0o7777 != 0o711 { chmod(root, 0o711) }
        removeAbandonedTemporaries()
    }

    /// Removes `.tmp-<hash>-<pid>-<n>` directories left by an explode whose process is gone (a crash).
    private func removeAbandonedTemporaries() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for name in names where name.hasPrefix(".tmp-") {
            let parts = name.split(separator: "-")
            guard parts.count == 4, let pid = Int32(parts[2]), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else {
                continue
            }
            logger.info("removing an abandoned bundle extraction", metadata: ["directory": "\(root)/\(name)"])
            try? remove("\(root)/\(name)")
        }
    }

    private func makeDirectory(_ path: String, mode: mode_t) throws(BundleError) {
        guard mkdir(path, mode) == 0 else {
            throw BundleError(.explodeFailed, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }

    private func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    private func remove(_ path: String) throws(BundleError) {
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw BundleError(.explodeFailed, "cannot remove \(path): \(error)")
        }
    }
}
