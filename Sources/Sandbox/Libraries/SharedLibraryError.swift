public import SystemPackage
import SystemCalls

/// Why shared-library resolution failed: a stable code, a message, and where (file and byte offset).
///
/// ``code`` values are part of the API (operators and logs match on them); ``message`` is for people.
/// ``errno`` is set when a system call failed.
public struct SharedLibraryError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// `open`, `fstat`, `pread` or `realpath` failed; see ``SharedLibraryError/errno``.
        case unreadableFile = "unreadable-file"
        /// The path names a directory, FIFO, device or socket.
        case notRegularFile = "not-regular-file"
        /// A structure extends past the end of the file.
        case truncatedFile = "truncated-file"
        /// The file does not start with the ELF magic.
        case notELF = "not-elf"
        /// 32-bit (or unknown class) ELF: only ELF64 is supported.
        case unsupportedClass = "unsupported-class"
        /// Big-endian ELF: only little-endian is supported.
        case unsupportedByteOrder = "unsupported-byte-order"
        /// Neither x86_64 nor aarch64.
        case unsupportedMachine = "unsupported-machine"
        /// Not an executable or shared object (relocatable, core, …), or a library that is not `ET_DYN`.
        case unsupportedObjectType = "unsupported-object-type"
        /// Inconsistent headers, offsets or sizes out of bounds, unterminated strings.
        case malformedELF = "malformed-elf"
        /// No directory in the loader's search order holds a usable library of that name.
        case libraryNotFound = "library-not-found"
        /// `/etc/ld.so.cache` exists but is not a valid `glibc-ld.so.cache1.1` file.
        case malformedLoaderCache = "malformed-loader-cache"
        /// A sanity limit (string length, table size, number of libraries) was exceeded.
        case limitExceeded = "limit-exceeded"
    }

    public var code: Code
    public var message: String
    /// The file the error is about.
    public var path: FilePath?
    /// Byte offset in ``path`` of the offending structure, when one applies.
    public var offset: UInt64?
    /// The kernel's error when a system call failed.
    public var errno: Errno?

    public init(_ code: Code, _ message: String, path: FilePath? = nil, offset: UInt64? = nil, errno: Errno? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.errno = errno
    }

    public var description: String {
        var text = "shared libraries [\(code.rawValue)]"
        if let path { text += " \(path)" }
        if let offset { text += " at offset \(offset)" }
        text += ": \(message)"
        if let errno { text += " (\(errno), errno \(errno.rawValue))" }
        return text
    }
}

extension SharedLibraryError {
    init(_ code: Code, _ message: String, path: String, offset: UInt64? = nil) {
        self.init(code, message, path: FilePath(path), offset: offset)
    }

    init(unreadable path: String, _ failure: SystemCallError) {
        self.init(.unreadableFile, failure.operation, path: FilePath(path), errno: failure.errno)
    }
}
