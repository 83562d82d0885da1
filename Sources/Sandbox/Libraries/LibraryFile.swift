#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemCalls
import SystemPackage

/// An open regular file read with `pread` at explicit, bounds-checked offsets.
///
/// Never opens anything but a regular file for reading (checked through an `O_PATH` handle first, so a
/// device node or FIFO planted under a library or interpreter name is not even opened); opened
/// `O_NONBLOCK` as well. Reads never go past the size seen at open: a shorter read is a typed
/// ``SharedLibraryError/Code/truncatedFile`` error with the offset, not a crash.
final class LibraryFile {
    let path: String
    let size: UInt64
    /// Device and inode: how the loader recognises the same file reached through different names.
    let identity: FileIdentity
    private let descriptor: Int32

    /// Largest single read; callers bound their tables well below it.
    static let maximumReadSize = 16 << 20

    /// Opens `path`; `nil` when it does not exist (ENOENT, ENOTDIR) or is not accessible (EACCES), which a
    /// search treats as "try the next directory".
    static func openIfPresent(_ path: String) throws(SharedLibraryError) -> LibraryFile? {
        do {
            return try LibraryFile(path)
        } catch let error where error.code == .unreadableFile {
            switch error.errno {
            case .noSuchFileOrDirectory?, .notDirectory?, .permissionDenied?, .fileNameTooLong?:
                return nil
            default:
                throw error
            }
        }
    }

    init(_ path: String) throws(SharedLibraryError) {
        // The type is checked before the file is opened for reading: `open(O_RDONLY)` on a device node
        // already acts (opening `/dev/watchdog` arms it), and a runtime's PT_INTERP, RPATH or NEEDED names
        // are hostile input. `O_PATH` resolves the name without opening the object; only a regular file
        // is then reopened for reading, through its `/proc/self/fd` link so the inode cannot be swapped
        // between the check and the open. Without /proc the file is refused (fail closed).
        let handle: Int32
        do {
            handle = try retryingInterrupts("open(\(path), O_PATH)") { open(path, openPathFlag | O_CLOEXEC) }
        } catch {
            throw SharedLibraryError(unreadable: path, error)
        }
        defer { close(handle) }
        var checked = stat()
        do {
            try retryingInterrupts("fstat(\(path))") { fstat(handle, &checked) }
        } catch {
            throw SharedLibraryError(unreadable: path, error)
        }
        guard checked.st_mode & S_IFMT == S_IFREG else {
            throw SharedLibraryError(.notRegularFile, "not a regular file", path: path)
        }
        let descriptor: Int32
        do {
            descriptor = try retryingInterrupts("open(\(path))") {
                open("/proc/self/fd/\(handle)", O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
            }
        } catch {
            throw SharedLibraryError(unreadable: path, error)
        }
        var status = stat()
        do {
            try retryingInterrupts("fstat(\(path))") { fstat(descriptor, &status) }
        } catch {
            close(descriptor)
            throw SharedLibraryError(unreadable: path, error)
        }
        guard status.st_mode & S_IFMT == S_IFREG, status.st_dev == checked.st_dev, status.st_ino == checked.st_ino else {
            close(descriptor)
            throw SharedLibraryError(.notRegularFile, "not a regular file (changed while being opened)", path: path)
        }
        self.path = path
        self.descriptor = descriptor
        self.size = UInt64(max(status.st_size, 0))
        self.identity = FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    deinit { close(descriptor) }

    /// Exactly `count` bytes at `offset`, or a ``SharedLibraryError/Code/truncatedFile`` error.
    func read(at offset: UInt64, count: Int, what: String) throws(SharedLibraryError) -> [UInt8] {
        guard count >= 0, count <= Self.maximumReadSize else {
            throw SharedLibraryError(.limitExceeded, "\(what): \(count) bytes is more than the \(Self.maximumReadSize)-byte read limit", path: path, offset: offset)
        }
        guard offset <= size, UInt64(count) <= size - offset else {
            throw SharedLibraryError(.truncatedFile, "\(what): \(count) bytes do not fit in the \(size)-byte file", path: path, offset: offset)
        }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let position = off_t(offset) + off_t(filled)
            let got: Int
            do {
                got = try retryingInterrupts("pread(\(path))") {
                    bytes.withUnsafeMutableBytes { buffer in
                        pread(descriptor, buffer.baseAddress! + filled, count - filled, position)
                    }
                }
            } catch {
                throw SharedLibraryError(unreadable: path, error)
            }
            if got == 0 {
                throw SharedLibraryError(.truncatedFile, "\(what): file ended early (it shrank while being read)", path: path, offset: UInt64(position))
            }
            filled += got
        }
        return bytes
    }

    /// The NUL-terminated string at `offset`, which must end before `limit` (an absolute file offset).
    func string(at offset: UInt64, before limit: UInt64, what: String) throws(SharedLibraryError) -> String {
        let end = min(limit, size)
        guard offset < end else {
            throw SharedLibraryError(.malformedELF, "\(what): string offset is outside its table", path: path, offset: offset)
        }
        let available = end - offset
        let count = Int(min(available, UInt64(Self.maximumStringLength + 1)))
        let bytes = try read(at: offset, count: count, what: what)
        guard let terminator = bytes.firstIndex(of: 0) else {
            if available > UInt64(Self.maximumStringLength) {
                throw SharedLibraryError(.limitExceeded, "\(what): string longer than \(Self.maximumStringLength) bytes", path: path, offset: offset)
            }
            throw SharedLibraryError(.malformedELF, "\(what): string is not NUL-terminated inside its table", path: path, offset: offset)
        }
        return String(decoding: bytes[..<terminator], as: UTF8.self)
    }

    /// `PATH_MAX`: no name or search path the loader accepts is longer.
    static let maximumStringLength = 4096
}

/// Device and inode number of a file.
struct FileIdentity: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64
}

/// The canonical path of `path`: absolute, every symlink resolved (`realpath(3)`).
func canonicalPath(_ path: String) throws(SharedLibraryError) -> String {
    guard let resolved = realpath(path, nil) else {
        throw SharedLibraryError(unreadable: path, SystemCallError("realpath(\(path))", errno: Errno(rawValue: errno)))
    }
    defer { free(resolved) }
    return String(cString: resolved)
}
