/// Why a bundle was refused or could not be used: a stable ``Code`` and a message naming the entry or field.
///
/// Codes are part of sandboxd's contract (the API and `sandboxctl bundle inspect` show them): never rename
/// one, add new ones instead.
public struct BundleError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// The file cannot be opened or read (missing, not a regular file, I/O error).
        case unreadable = "bundle_unreadable"
        /// Not a ZIP archive sandboxd can read (no end record, ZIP64, multi-disk, bad headers, bad CRC).
        case malformedArchive = "bundle_malformed_archive"
        /// An archive-safety rule: entry count, sizes, compression ratio, overlapping data.
        case limitExceeded = "bundle_limit_exceeded"
        /// An entry that is not a plain file: symlink, directory, device, encrypted, unknown compression.
        case unsupportedEntry = "bundle_unsupported_entry"
        /// An entry name that is not a plain file name: traversal, directory part, NUL, duplicate.
        case invalidEntryName = "bundle_invalid_entry_name"
        /// The first entry is not `META-INF/MANIFEST.MF`, or the manifest is not valid JSON.
        case invalidManifest = "bundle_invalid_manifest"
        /// Upstream's `Manifest.Validate` / `Bundle.Validate` refused the bundle.
        case validationFailed = "bundle_validation_failed"
        /// A file's SHA-512/256 does not match the manifest, or a file has no digest.
        case digestMismatch = "bundle_digest_mismatch"
        /// The manifest hash is not the one the caller pinned.
        case manifestHashMismatch = "bundle_manifest_hash_mismatch"
        /// No such component in the manifest.
        case unknownComponent = "bundle_unknown_component"
        /// The component has no ELF executable (SGX/TDX only): sandboxd cannot run it.
        case unsupportedComponent = "unsupported_component"
        /// Writing or verifying the exploded directory failed.
        case explodeFailed = "bundle_explode_failed"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
