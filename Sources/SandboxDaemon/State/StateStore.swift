#if canImport(Glibc)
import Glibc
#endif
import Foundation
public import Logging
import SystemCalls

/// One runtime's durable desired state: its spec and whether it should be running.
public struct StateRecord: Sendable, Hashable {
    public var spec: RuntimeSpecification
    public var desiredRunning: Bool

    public init(spec: RuntimeSpecification, desiredRunning: Bool) {
        self.spec = spec
        self.desiredRunning = desiredRunning
    }
}

/// Durable desired state: one JSON file per runtime under `<state dir>/runtimes/`.
///
/// Writes are crash-safe: write a temp file, `fsync` it, `rename` it over the old one, `fsync` the
/// directory — all before the caller (and so the API) answers. Removal unlinks and `fsync`s the directory.
/// ``record(_:)`` and ``forget(name:)`` are the same with group commit (``GroupCommit``): concurrent
/// callers share one directory `fsync`, off the cooperative pool; each still returns only once durable.
/// A file that cannot be read back is never dropped silently: it is logged and renamed aside to
/// `<name>.json.corrupt-<UTC timestamp>`.
public struct StateStore: Sendable {
    /// The directory holding the runtime files.
    public let directory: String
    private let logger: Logger
    static let formatVersion: Int64 = 1
    let committer: GroupCommit

    /// Opens (creating, mode 0700) `<stateDirectory>/runtimes`.
    public init(stateDirectory: String, logger: Logger) throws(DaemonError) {
        directory = stateDirectory + "/runtimes"
        self.logger = logger
        committer = GroupCommit(directory: directory)
        try Directories.ensure(stateDirectory, mode: 0o700)
        try Directories.ensure(directory, mode: 0o700)
    }

    private func path(for name: String) -> String { "\(directory)/\(name).json" }

    private func encode(_ record: StateRecord) -> [UInt8] {
        let document: JSONValue = .object([
            "format": .integer(Self.formatVersion),
            "desired": .string(record.desiredRunning ? "running" : "stopped"),
            "spec": record.spec.document,
        ])
        var bytes = APIJSON.encode(document)
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// Writes `bytes` to a new temp file; returns its (open) descriptor.
    private func writeTemporary(_ temporary: String, _ bytes: [UInt8]) throws(SystemCallError) -> Int32 {
        let fd = try retryingInterrupts("open(\(temporary))") {
            open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        }
        do throws(SystemCallError) {
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { buffer in
                    Result { () throws(SystemCallError) -> Int in
                        try retryingInterrupts("write(\(temporary))") {
                            write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                        }
                    }
                }
                offset += try written.get()
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Durably records a runtime's desired state, group-committed with concurrent calls: returns once the
    /// file is synced, renamed into place and the directory synced.
    public func record(_ record: StateRecord) async throws(DaemonError) {
        let temporary = "\(directory)/.\(record.spec.name).json.\(committer.nextSerial()).tmp"
        do throws(SystemCallError) {
            let fd = try writeTemporary(temporary, encode(record))
            try await committer.commit(.replace(fd: fd, temporary: temporary, final: path(for: record.spec.name)))
        } catch {
            unlink(temporary)
            throw DaemonError(.stateFailure, "cannot record runtime \(record.spec.name): \(error)")
        }
    }

    /// Durably forgets a runtime (no error when it was never recorded); the directory sync is shared with
    /// concurrent calls.
    public func forget(name: String) async throws(DaemonError) {
        do throws(SystemCallError) {
            if unlink(path(for: name)) != 0 {
                let code = errno
                if code != ENOENT {
                    throw SystemCallError("unlink(\(path(for: name)))", errno: .init(rawValue: code))
                }
                return
            }
            try await committer.commit(.directoryOnly)
        } catch {
            throw DaemonError(.stateFailure, "cannot forget runtime \(name): \(error)")
        }
    }

    /// Durably records a runtime's desired state (one caller at a time; see ``record(_:)``).
    public func save(_ record: StateRecord) throws(DaemonError) {
        let bytes = encode(record)
        let final = path(for: record.spec.name)
        let temporary = "\(directory)/.\(record.spec.name).json.tmp"
        do {
            let fd = try retryingInterrupts("open(\(temporary))") {
                open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
            }
            defer { close(fd) }
            var offset = 0
            while offset < bytes.count {
                let written = try bytes.withUnsafeBytes { buffer in
                    try retryingInterrupts("write(\(temporary))") {
                        write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    }
                }
                offset += written
            }
            try retryingInterrupts("fsync(\(temporary))") { fsync(fd) }
            try retryingInterrupts("rename(\(temporary), \(final))") { rename(temporary, final) }
            try syncDirectory()
        } catch {
            unlink(temporary)
            throw DaemonError(.stateFailure, "cannot record runtime \(record.spec.name): \(error)")
        }
    }

    /// Durably forgets a runtime (no error when it was never recorded).
    public func remove(name: String) throws(DaemonError) {
        do {
            if unlink(path(for: name)) != 0 {
                let code = errno
                if code != ENOENT {
                    throw SystemCallError("unlink(\(path(for: name)))", errno: .init(rawValue: code))
                }
                return
            }
            try syncDirectory()
        } catch {
            throw DaemonError(.stateFailure, "cannot forget runtime \(name): \(error)")
        }
    }

    private func syncDirectory() throws(SystemCallError) { try Self.syncDirectory(directory) }

    /// Makes the directory's entries durable: a rename or unlink in it survives a crash once this returns.
    static func syncDirectory(_ directory: String) throws(SystemCallError) {
        let fd = try retryingInterrupts("open(\(directory))") { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        try retryingInterrupts("fsync(\(directory))") { fsync(fd) }
    }

    /// The result of reading the state directory back.
    public struct Restored: Sendable {
        public var records: [StateRecord]
        /// Files that could not be read, as renamed aside (full paths).
        public var corrupt: [String]
    }

    /// Reads every recorded runtime; unreadable files are renamed aside and reported, temp files removed.
    public func loadAll() -> Restored {
        var restored = Restored(records: [], corrupt: [])
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        let validator = SpecValidator(defaultBackend: .namespaces, checkFilesystem: false)
        for file in names {
            let full = "\(directory)/\(file)"
            if file.hasPrefix("."), file.hasSuffix(".tmp") {
                unlink(full)  // an interrupted write: the previous version (if any) is still in place
                continue
            }
            guard file.hasSuffix(".json") else { continue }
            do throws(DaemonError) {
                restored.records.append(try decode(file: full, expectedName: String(file.dropLast(5)), validator))
            } catch {
                let aside = "\(full).corrupt-\(Self.timestamp())"
                rename(full, aside)
                logger.error(
                    "corrupt state file kept aside",
                    metadata: ["file": "\(full)", "kept_as": "\(aside)", "error": "\(error.message)"]
                )
                restored.corrupt.append(aside)
            }
        }
        return restored
    }

    private func decode(file: String, expectedName: String, _ validator: SpecValidator) throws(DaemonError) -> StateRecord {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw DaemonError(.stateFailure, "cannot read \(file)")
        }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw DaemonError(.stateFailure, "not JSON: \(error)")
        }
        guard case .object(let object) = value, object["format"] == .integer(Self.formatVersion),
              let spec = object["spec"], case .string(let desired)? = object["desired"],
              desired == "running" || desired == "stopped"
        else { throw DaemonError(.stateFailure, "not a format-\(Self.formatVersion) runtime record") }
        let validated = try validator.validate(spec)
        guard validated.name == expectedName else {
            throw DaemonError(.stateFailure, "file name does not match runtime name \(validated.name)")
        }
        return StateRecord(spec: validated, desiredRunning: desired == "running")
    }

    static func timestamp() -> String {
        RFC3339.format(Date()).replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "")
    }
}

/// Creating the daemon's own directories with safe modes.
enum Directories {
    /// Creates `path` (and missing parents) with `mode`; an existing directory keeps its mode.
    static func ensure(_ path: String, mode: mode_t) throws(DaemonError) {
        var info = stat()
        if stat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw DaemonError(.invalidConfig, "\(path) exists and is not a directory")
            }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path, parent != "/" { try ensure(parent, mode: 0o755) }
        if mkdir(path, mode) != 0, errno != EEXIST {
            throw DaemonError(.invalidConfig, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        // mkdir is subject to the umask; set the mode on the directory itself, never through a symlink.
        do {
            try secureOwnership(of: path, expecting: .directory, mode: mode)
        } catch {
            throw DaemonError(.invalidConfig, "cannot set the mode of \(path): \(error)")
        }
    }
}
