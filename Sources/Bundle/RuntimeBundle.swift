#if canImport(Glibc)
import Glibc
#endif
import SystemCalls

/// An opened `.orc` bundle: the parsed manifest, its hash, and the SHA-512/256 of every entry as read.
///
/// ``open(path:limits:pinnedManifestHash:extractingTo:)`` applies sandboxd's archive-safety rules (they
/// throw at once); ``validate()`` applies upstream's `bundle.Open` structural rules and `Bundle.Validate`.
/// Opening reads every entry once (streamed, bounded), so digests are always of the bytes actually read.
public struct RuntimeBundle: Sendable {
    public static let manifestName = ZipReader.manifestName

    public let path: String
    public let manifest: BundleManifest
    /// The manifest entry's bytes (JSON) as read.
    public let manifestJSON: [UInt8]
    /// Upstream's `Manifest.Hash()`.
    public let manifestHash: [UInt8]
    /// Entry name → SHA-512/256 of its bytes (the manifest entry included), in archive order.
    public let fileDigests: [(name: String, digest: [UInt8])]
    /// Upstream's structural refusal (manifest not first, nested path), reported by ``validate()``.
    let structuralError: BundleError?

    public var manifestHashHex: String { Hex.encode(manifestHash) }

    /// Opens and reads the bundle.
    ///
    /// - Parameters:
    ///   - pinnedManifestHash: when given, a different manifest hash fails before any other entry is read.
    ///   - extractingTo: when given, every entry is also written below this (existing, empty) directory,
    ///     created exclusively and without following links. Nothing is extracted for a structurally
    ///     invalid bundle.
    public static func open(
        path: String, limits: BundleLimits = BundleLimits(), pinnedManifestHash: [UInt8]? = nil,
        extractingTo directory: String? = nil
    ) throws(BundleError) -> RuntimeBundle {
        let reader = try ZipReader(path: path, limits: limits)
        guard let manifestEntry = reader.entries.first(where: { $0.name == manifestName }) else {
            throw reader.structuralError ?? BundleError(.invalidManifest, "missing manifest (META-INF/MANIFEST.MF)")
        }
        let manifestBytes = try reader.readAll(manifestEntry, bound: limits.maxManifestSize)
        let manifest = try BundleManifest.parse(json: manifestBytes)
        let hash = manifest.hash
        if let pinnedManifestHash, pinnedManifestHash != hash {
            throw BundleError(
                .manifestHashMismatch,
                "manifest hash of \(path) is \(Hex.encode(hash)), not the pinned \(Hex.encode(pinnedManifestHash))"
            )
        }
        if directory != nil, let structural = reader.structuralError { throw structural }

        var digests: [(name: String, digest: [UInt8])] = []
        for entry in reader.entries {
            if entry.name == manifestName {
                digests.append((entry.name, SHA512_256.hash(manifestBytes)))
                if let directory { try FileSink.write(manifestBytes, to: "\(directory)/\(entry.name)") }
                continue
            }
            var hasher = SHA512_256()
            let sink: FileSink? = if let directory { try FileSink(path: "\(directory)/\(entry.name)") } else { nil }
            try reader.read(entry) { (chunk: UnsafeRawBufferPointer) throws(BundleError) in
                hasher.update(chunk)
                try sink?.write(chunk)
            }
            try sink?.finish()
            digests.append((entry.name, hasher.finalize()))
        }
        return RuntimeBundle(
            path: path, manifest: manifest, manifestJSON: manifestBytes, manifestHash: hash, fileDigests: digests,
            structuralError: reader.structuralError
        )
    }

    /// Reads only the manifest (the first entry, bounded): the manifest and its hash, before anything else.
    public static func readManifest(
        path: String, limits: BundleLimits = BundleLimits()
    ) throws(BundleError) -> (manifest: BundleManifest, hash: [UInt8]) {
        let reader = try ZipReader(path: path, limits: limits)
        guard let entry = reader.entries.first(where: { $0.name == manifestName }) else {
            throw reader.structuralError ?? BundleError(.invalidManifest, "missing manifest (META-INF/MANIFEST.MF)")
        }
        let manifest = try BundleManifest.parse(json: try reader.readAll(entry, bound: limits.maxManifestSize))
        return (manifest, manifest.hash)
    }

    /// Upstream's verdict: structural rules, `Manifest.Validate`, every named file present, every file
    /// digested and matching. (SGX signatures are not verified: sandboxd runs only ELF components.)
    public func validate() throws(BundleError) {
        if let structuralError { throw structuralError }
        do {
            try manifest.validate()
        } catch {
            throw BundleError(.validationFailed, "malformed manifest: \(error.message)")
        }
        let present = Set(fileDigests.map(\.name))
        for component in manifest.availableComponents {
            let id = component.id
            var needed: [(what: String, file: String, optional: Bool)] = []
            if let elf = component.elf {
                needed.append(("\(id): ELF executable", elf.executable, false))
            } else {
                needed.append(("\(id): ELF executable", component.executable, true))
            }
            if let sgx = component.sgx {
                needed.append(("\(id): SGX executable", sgx.executable, false))
                needed.append(("\(id): SGX signature", sgx.signature, true))
            }
            if let tdx = component.tdx {
                needed.append(("\(id): TDX virtual firmware", tdx.firmware, false))
                needed.append(("\(id): TDX kernel image", tdx.kernel, true))
                needed.append(("\(id): TDX initrd image", tdx.initrd, true))
                needed.append(("\(id): TDX VM stage 2 image", tdx.stage2Image, true))
            }
            for need in needed {
                if need.file.isEmpty {
                    if need.optional { continue }
                    throw BundleError(.validationFailed, "missing \(need.what) in manifest")
                }
                guard present.contains(need.file) else {
                    throw BundleError(.validationFailed, "missing \(need.what) in bundle ('\(need.file)')")
                }
            }
        }
        for (name, digest) in fileDigests {
            guard let expected = manifest.digests?[name] else {
                if name == Self.manifestName { continue }
                throw BundleError(.digestMismatch, "missing digest: '\(name)'")
            }
            guard expected == digest else { throw BundleError(.digestMismatch, "invalid digest: '\(name)'") }
        }
    }

    /// The upstream verdict as a value: nil when valid.
    public var verdict: BundleError? {
        do {
            try validate()
            return nil
        } catch {
            return error
        }
    }
}

/// Writes one extracted entry: created exclusively (`O_EXCL|O_NOFOLLOW`), mode 0600 until the explode
/// finishes and sets the final modes.
final class FileSink {
    let fd: Int32
    let path: String

    init(path: String) throws(BundleError) {
        do {
            fd = try retryingInterrupts("open(\(path))") {
                open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            }
        } catch {
            throw BundleError(.explodeFailed, "cannot create \(path): \(error)")
        }
        self.path = path
    }

    deinit { close(fd) }

    func write(_ bytes: UnsafeRawBufferPointer) throws(BundleError) {
        var offset = 0
        while offset < bytes.count {
            do {
                offset += try retryingInterrupts("write(\(path))") {
                    Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                }
            } catch {
                throw BundleError(.explodeFailed, "cannot write \(path): \(error)")
            }
        }
    }

    func finish() throws(BundleError) {
        do {
            try retryingInterrupts("fsync(\(path))") { fsync(fd) }
        } catch {
            throw BundleError(.explodeFailed, "cannot write \(path): \(error)")
        }
    }

    static func write(_ bytes: [UInt8], to path: String) throws(BundleError) {
        let sink = try FileSink(path: path)
        var failure: BundleError?
        bytes.withUnsafeBytes { buffer in
            do throws(BundleError) { try sink.write(buffer) } catch { failure = error }
        }
        if let failure { throw failure }
        try sink.finish()
    }
}
