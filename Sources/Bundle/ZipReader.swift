#if canImport(Glibc)
import Glibc
#endif
import CZlib
import SystemCalls

/// Archive-safety bounds for reading a bundle. Every size the archive claims is checked against these
/// before anything is read, and every byte actually produced is counted against the claim.
public struct BundleLimits: Sendable, Hashable {
    /// Entries in the central directory (the manifest included).
    public var maxEntries: Int = 1024
    /// Sum of all entries' uncompressed sizes.
    public var maxTotalSize: UInt64 = 1 << 30
    /// One entry's uncompressed size.
    public var maxFileSize: UInt64 = 1 << 30
    /// The manifest's size (it is read into memory and parsed as JSON).
    public var maxManifestSize: UInt64 = 1 << 20
    /// Uncompressed/compressed ratio allowed for an entry larger than ``ratioFloor`` (deflate tops out
    /// near 1032:1; executables compress 2–5:1).
    public var maxCompressionRatio: UInt64 = 100
    /// Entries up to this size are exempt from the ratio check (small text files compress very well).
    public var ratioFloor: UInt64 = 1 << 20

    public init() {}
}

/// One central-directory entry, checked against ``BundleLimits`` and the name rules.
struct ZipEntry: Sendable {
    var index: Int
    var name: String
    var method: UInt16
    var crc32: UInt32
    var compressedSize: UInt64
    /// Claimed by the archive: an upper bound enforced while inflating, and checked for equality at the end.
    var uncompressedSize: UInt64
    var localHeaderOffset: UInt64
    /// Filled from the local header when the archive is opened.
    var dataOffset: UInt64 = 0
}

/// A streaming reader for the ZIP subset Oasis bundles use (stored or deflated plain files, no ZIP64, no
/// encryption), written against hostile input: nothing is allocated from a claimed length, entries'
/// data may not overlap, and output is counted while inflating and stopped at the bound.
///
/// Not `Sendable`: one reader belongs to one call; it owns the descriptor and closes it in `deinit`.
final class ZipReader {
    static let chunkSize = 64 * 1024
    static let manifestName = "META-INF/MANIFEST.MF"

    let path: String
    let entries: [ZipEntry]
    /// An upstream (`bundle.Open`) structural refusal that does not stop reading the manifest: the manifest
    /// is not the first entry, or an entry has a directory part. Reported by validation.
    let structuralError: BundleError?
    private let fd: Int32
    private let limits: BundleLimits

    init(path: String, limits: BundleLimits) throws(BundleError) {
        self.path = path
        self.limits = limits
        let descriptor: Int32
        do {
            // O_NONBLOCK: a FIFO or device named as a bundle must not block the open; it is refused below.
            descriptor = try retryingInterrupts("open(\(path))") { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) }
        } catch {
            throw BundleError(.unreadable, "cannot open bundle \(path): \(error)")
        }
        fd = descriptor
        do throws(BundleError) {
            var info = stat()
            guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
                throw BundleError(.unreadable, "bundle \(path) is not a regular file")
            }
            let size = UInt64(info.st_size)
            (entries, structuralError) = try Self.readDirectory(fd: fd, path: path, fileSize: size, limits: limits)
        } catch {
            close(descriptor)
            throw error
        }
    }

    deinit { close(fd) }

    // MARK: - Central directory

    private static func readDirectory(
        fd: Int32, path: String, fileSize: UInt64, limits: BundleLimits
    ) throws(BundleError) -> ([ZipEntry], BundleError?) {
        // End of central directory: 22 bytes plus a comment of at most 65535 bytes, at the end of the file.
        guard fileSize >= 22 else { throw BundleError(.malformedArchive, "\(path) is too short to be a ZIP archive") }
        let tailLength = Int(min(fileSize, 22 + 65_535))
        let tailOffset = fileSize - UInt64(tailLength)
        let tail = try readExactly(fd: fd, offset: tailOffset, count: tailLength, what: "end of central directory")
        var eocd: Int?
        var position = tailLength - 22
        while position >= 0 {
            if tail[position] == 0x50, tail[position + 1] == 0x4b, tail[position + 2] == 0x05, tail[position + 3] == 0x06,
               position + 22 + Int(le16(tail, position + 20)) <= tailLength {
                eocd = position
                break
            }
            position -= 1
        }
        guard let eocd else { throw BundleError(.malformedArchive, "\(path) has no ZIP end of central directory record") }
        let disk = le16(tail, eocd + 4), directoryDisk = le16(tail, eocd + 6)
        let entriesOnDisk = le16(tail, eocd + 8), totalEntries = le16(tail, eocd + 10)
        let directorySize = UInt64(le32(tail, eocd + 12)), directoryOffset = UInt64(le32(tail, eocd + 16))
        guard disk == 0, directoryDisk == 0, entriesOnDisk == totalEntries else {
            throw BundleError(.malformedArchive, "multi-disk ZIP archives are not supported")
        }
        guard totalEntries != 0xFFFF, directorySize != 0xFFFF_FFFF, directoryOffset != 0xFFFF_FFFF else {
            throw BundleError(.malformedArchive, "ZIP64 archives are not supported (bundles are bounded far below 4 GiB)")
        }
        guard Int(totalEntries) <= limits.maxEntries else {
            throw BundleError(.limitExceeded, "the archive has \(totalEntries) entries, more than the limit of \(limits.maxEntries)")
        }
        guard totalEntries > 0 else { throw BundleError(.invalidManifest, "the archive is empty (no META-INF/MANIFEST.MF)") }
        let eocdOffset = tailOffset + UInt64(eocd)
        guard directoryOffset + directorySize <= eocdOffset,
              directorySize <= min(UInt64(totalEntries) * UInt64(46 + 3 * 65_535), 8 << 20)
        else {
            throw BundleError(.malformedArchive, "the central directory lies outside the archive")
        }
        let directory = try readExactly(fd: fd, offset: directoryOffset, count: Int(directorySize), what: "central directory")

        var entries: [ZipEntry] = []
        var names = Set<String>()
        var structural: BundleError?
        var claimedTotal: UInt64 = 0
        var cursor = 0
        for index in 0..<Int(totalEntries) {
            guard cursor + 46 <= directory.count, le32(directory, cursor) == 0x0201_4b50 else {
                throw BundleError(.malformedArchive, "central directory record \(index) is malformed")
            }
            let madeBy = le16(directory, cursor + 4)
            let flags = le16(directory, cursor + 8)
            let method = le16(directory, cursor + 10)
            let crc = le32(directory, cursor + 16)
            let compressed = UInt64(le32(directory, cursor + 20))
            let uncompressed = UInt64(le32(directory, cursor + 24))
            let nameLength = Int(le16(directory, cursor + 28))
            let extraLength = Int(le16(directory, cursor + 30))
            let commentLength = Int(le16(directory, cursor + 32))
            let external = le32(directory, cursor + 38)
            let localOffset = UInt64(le32(directory, cursor + 42))
            let recordEnd = cursor + 46 + nameLength + extraLength + commentLength
            guard recordEnd <= directory.count else {
                throw BundleError(.malformedArchive, "central directory record \(index) runs past the directory")
            }
            let nameBytes = Array(directory[(cursor + 46)..<(cursor + 46 + nameLength)])
            cursor = recordEnd

            guard !nameBytes.contains(0), let name = String(validating: nameBytes, as: UTF8.self) else {
                throw BundleError(.invalidEntryName, "entry \(index) has a name that is not NUL-free UTF-8")
            }
            let shown = "'\(name)'"
            guard nameLength <= 255 || name == manifestName else {
                throw BundleError(.invalidEntryName, "entry \(shown) has a name longer than 255 bytes")
            }
            // Safety first: traversal, absolute names and directory/special entries are never acceptable.
            let components = name.split(separator: "/", omittingEmptySubsequences: false)
            if name.isEmpty || name.hasPrefix("/") || name.contains("\\")
                || components.contains(where: { $0 == ".." || $0 == "." })
            {
                throw BundleError(.invalidEntryName, "entry \(shown) is not a plain file name (path traversal)")
            }
            if name.hasSuffix("/") || (madeBy >> 8 == 0 && external & 0x10 != 0) {
                throw BundleError(.unsupportedEntry, "entry \(shown) is a directory; bundles hold plain files only")
            }
            if madeBy >> 8 == 3 || madeBy >> 8 == 19 {
                let fileType = (external >> 16) & 0o170000
                switch fileType {
                case 0, 0o100000: break
                case 0o120000: throw BundleError(.unsupportedEntry, "entry \(shown) is a symbolic link")
                case 0o040000: throw BundleError(.unsupportedEntry, "entry \(shown) is a directory")
                default:
                    throw BundleError(.unsupportedEntry, "entry \(shown) is a special file (mode \(String(fileType, radix: 8)))")
                }
            }
            guard flags & 0x41 == 0 else { throw BundleError(.unsupportedEntry, "entry \(shown) is encrypted") }
            guard method == 0 || method == 8 else {
                throw BundleError(.unsupportedEntry, "entry \(shown) uses compression method \(method) (only stored and deflate)")
            }
            guard names.insert(name).inserted else {
                throw BundleError(.invalidEntryName, "entry \(shown) appears more than once")
            }
            guard compressed != 0xFFFF_FFFF, uncompressed != 0xFFFF_FFFF else {
                throw BundleError(.malformedArchive, "entry \(shown) uses ZIP64 sizes")
            }
            guard uncompressed <= limits.maxFileSize else {
                throw BundleError(.limitExceeded, "entry \(shown) is \(uncompressed) bytes, more than the per-file limit of \(limits.maxFileSize)")
            }
            claimedTotal += uncompressed
            guard claimedTotal <= limits.maxTotalSize else {
                throw BundleError(.limitExceeded, "entry \(shown) takes the bundle past the total size limit of \(limits.maxTotalSize) bytes")
            }
            if uncompressed > limits.ratioFloor, uncompressed > compressed.multipliedReportingOverflow(by: limits.maxCompressionRatio).partialValue {
                throw BundleError(
                    .limitExceeded,
                    "entry \(shown) has a compression ratio above \(limits.maxCompressionRatio):1 (\(compressed) → \(uncompressed) bytes)"
                )
            }
            if method == 0, compressed != uncompressed {
                throw BundleError(.malformedArchive, "stored entry \(shown) has different compressed and uncompressed sizes")
            }
            // Upstream's structural rules (bundle.Open): reported by validation, after the manifest is read.
            if structural == nil {
                if index == 0, name != manifestName {
                    structural = BundleError(.invalidManifest, "invalid manifest file name: '\(name)' (META-INF/MANIFEST.MF must be the first entry)")
                } else if index != 0, components.count > 1 {
                    structural = BundleError(.invalidEntryName, "failed to sanitize path '\(name)' (entries must be plain file names)")
                }
            }
            entries.append(ZipEntry(
                index: index, name: name, method: method, crc32: crc, compressedSize: compressed,
                uncompressedSize: uncompressed, localHeaderOffset: localOffset
            ))
        }

        // Local headers: where each entry's data starts. Data ranges must lie before the central
        // directory and must not overlap (overlapping entries are the classic quadratic zip bomb).
        for position in entries.indices {
            let entry = entries[position]
            let header = try readExactly(fd: fd, offset: entry.localHeaderOffset, count: 30, what: "local header of '\(entry.name)'")
            guard le32(header, 0) == 0x0403_4b50 else {
                throw BundleError(.malformedArchive, "entry '\(entry.name)' has no local file header")
            }
            guard le16(header, 8) == entry.method else {
                throw BundleError(.malformedArchive, "entry '\(entry.name)': local and central compression methods differ")
            }
            let nameLength = Int(le16(header, 26)), extraLength = Int(le16(header, 28))
            let localName = try readExactly(
                fd: fd, offset: entry.localHeaderOffset + 30, count: nameLength, what: "local name of '\(entry.name)'"
            )
            guard localName == Array(entry.name.utf8) else {
                throw BundleError(.malformedArchive, "entry '\(entry.name)': local and central names differ")
            }
            let dataOffset = entry.localHeaderOffset + 30 + UInt64(nameLength) + UInt64(extraLength)
            guard dataOffset + entry.compressedSize <= directoryOffset else {
                throw BundleError(.malformedArchive, "entry '\(entry.name)' has data outside the archive's data area")
            }
            entries[position].dataOffset = dataOffset
        }
        let byOffset = entries.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        for (previous, next) in zip(byOffset, byOffset.dropFirst())
        where previous.dataOffset + previous.compressedSize > next.localHeaderOffset {
            throw BundleError(.limitExceeded, "entries '\(previous.name)' and '\(next.name)' overlap in the archive")
        }
        return (entries, structural)
    }

    // MARK: - Entry data

    /// Streams an entry's uncompressed bytes to `sink` in chunks of at most 64 KiB, stopping with an error
    /// naming the entry as soon as the output exceeds the size the archive declared (already bounded by
    /// ``BundleLimits``), and checking the exact size and CRC-32 at the end.
    func read(
        _ entry: ZipEntry, into sink: (UnsafeRawBufferPointer) throws(BundleError) -> Void
    ) throws(BundleError) {
        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkSize, alignment: 16)
        defer { input.deallocate() }
        var remaining = entry.compressedSize
        var offset = entry.dataOffset
        var produced: UInt64 = 0
        var crc: UInt = crc32(0, nil, 0)

        func fill() throws(BundleError) -> Int {
            let count = Int(min(UInt64(Self.chunkSize), remaining))
            let got: Int
            do {
                got = try retryingInterrupts("pread(\(path))") { pread(fd, input.baseAddress, count, off_t(offset)) }
            } catch {
                throw BundleError(.unreadable, "cannot read entry '\(entry.name)': \(error)")
            }
            guard got > 0 else { throw BundleError(.malformedArchive, "entry '\(entry.name)' is truncated") }
            remaining -= UInt64(got)
            offset += UInt64(got)
            return got
        }

        func emit(_ bytes: UnsafeRawBufferPointer) throws(BundleError) {
            produced += UInt64(bytes.count)
            guard produced <= entry.uncompressedSize else {
                throw BundleError(
                    .limitExceeded,
                    "entry '\(entry.name)' inflates past its declared size of \(entry.uncompressedSize) bytes"
                )
            }
            crc = crc32(crc, bytes.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt(bytes.count))
            try sink(bytes)
        }

        if entry.method == 0 {
            while remaining > 0 {
                let got = try fill()
                try emit(UnsafeRawBufferPointer(rebasing: input[0..<got]))
            }
        } else {
            let output = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkSize, alignment: 16)
            defer { output.deallocate() }
            var stream = z_stream()
            guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw BundleError(.malformedArchive, "zlib cannot start inflating '\(entry.name)'")
            }
            defer { inflateEnd(&stream) }
            var finished = false
            while !finished {
                if stream.avail_in == 0 {
                    guard remaining > 0 else {
                        throw BundleError(.malformedArchive, "entry '\(entry.name)' ends before its deflate stream does")
                    }
                    let got = try fill()
                    stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_in = uInt(got)
                }
                stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(Self.chunkSize)
                let status = inflate(&stream, Z_NO_FLUSH)
                switch status {
                case Z_OK: break
                case Z_STREAM_END: finished = true
                case Z_BUF_ERROR where stream.avail_in == 0: break
                default:
                    throw BundleError(.malformedArchive, "entry '\(entry.name)' is not valid deflate data (zlib \(status))")
                }
                let count = Self.chunkSize - Int(stream.avail_out)
                if count > 0 { try emit(UnsafeRawBufferPointer(rebasing: output[0..<count])) }
            }
        }
        guard produced == entry.uncompressedSize else {
            throw BundleError(
                .malformedArchive,
                "entry '\(entry.name)' holds \(produced) bytes, not the \(entry.uncompressedSize) its header declares"
            )
        }
        guard UInt32(truncatingIfNeeded: crc) == entry.crc32 else {
            throw BundleError(.malformedArchive, "entry '\(entry.name)' fails its CRC-32 check")
        }
    }

    /// The whole entry in memory, for the manifest only (bounded by ``BundleLimits/maxManifestSize``).
    func readAll(_ entry: ZipEntry, bound: UInt64) throws(BundleError) -> [UInt8] {
        guard entry.uncompressedSize <= bound else {
            throw BundleError(.limitExceeded, "entry '\(entry.name)' is \(entry.uncompressedSize) bytes, more than \(bound)")
        }
        var bytes: [UInt8] = []
        try read(entry) { (chunk: UnsafeRawBufferPointer) throws(BundleError) in bytes.append(contentsOf: chunk) }
        return bytes
    }

    // MARK: - Helpers

    private static func readExactly(fd: Int32, offset: UInt64, count: Int, what: String) throws(BundleError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got: Int
            do {
                got = try bytes.withUnsafeMutableBytes { buffer throws(SystemCallError) in
                    try retryingInterrupts("pread") {
                        pread(fd, buffer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                    }
                }
            } catch {
                throw BundleError(.unreadable, "cannot read the \(what): \(error)")
            }
            guard got > 0 else { throw BundleError(.malformedArchive, "the archive ends inside the \(what)") }
            done += got
        }
        return bytes
    }
}

@inline(__always) func le16(_ bytes: [UInt8], _ at: Int) -> UInt16 {
    UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
}

@inline(__always) func le32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
}
