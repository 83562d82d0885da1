/// glibc's `/etc/ld.so.cache` in its current format (`glibc-ld.so.cache1.1`): library name → path.
///
/// Layout (little-endian): a 48-byte header — magic `glibc-ld.so.cache`, version `1.1`, `nlibs`,
/// `len_strings`, an endianness byte (0 unset, 2 little, 3 big), `extension_offset` — then `nlibs`
/// 24-byte entries `{flags: i32, key: u32, value: u32, osversion: u32, hwcap: u64}`. `key` (the name) and
/// `value` (the path) are offsets from the start of that header. Old ldconfig versions wrote a combined
/// file: the legacy `ld.so-1.7.0` table first, then the new header at the next 8-byte boundary; both
/// layouts are accepted, the legacy table itself is not read.
///
/// Lookups return the first entry for the machine's ABI (`flags`) without a hwcap requirement: the
/// baseline build, which runs on every CPU. Entries for `glibc-hwcaps` subdirectories are skipped.
struct LoaderCache: Sendable {
    struct Entry: Sendable, Hashable {
        var flags: Int32
        var hwcap: UInt64
        var path: String
    }

    static let defaultPath = "/etc/ld.so.cache"
    static let empty = LoaderCache(entriesByName: [:])

    private static let newMagic = Array("glibc-ld.so.cache1.1".utf8)
    private static let legacyMagic = Array("ld.so-1.7.0".utf8)
    private static let headerSize = 48
    private static let entrySize = 24
    private static let legacyHeaderSize = 16
    private static let legacyEntrySize = 12
    private static let maximumFileSize = 16 << 20

    private(set) var entriesByName: [String: [Entry]]

    private init(entriesByName: [String: [Entry]]) {
        self.entriesByName = entriesByName
    }

    /// Reads the cache at `path`; a missing file is an empty cache (the loader then uses its default paths).
    static func load(path: String) throws(SharedLibraryError) -> LoaderCache {
        guard let file = try LibraryFile.openIfPresent(path) else { return .empty }
        guard file.size <= UInt64(maximumFileSize) else {
            throw SharedLibraryError(.limitExceeded, "\(file.size)-byte loader cache (limit \(maximumFileSize))", path: path)
        }
        return try LoaderCache(bytes: file.read(at: 0, count: Int(file.size), what: "loader cache"), path: path)
    }

    init(bytes: [UInt8], path: String) throws(SharedLibraryError) {
        let base = try Self.newHeaderOffset(bytes, path: path)
        func fail(_ message: String, at offset: Int) -> SharedLibraryError {
            SharedLibraryError(.malformedLoaderCache, message, path: path, offset: UInt64(offset))
        }
        let byteOrder = bytes[base + 28]
        guard byteOrder == 0 || byteOrder == 2 else {
            throw fail(byteOrder == 3 ? "big-endian cache" : "invalid endianness marker \(byteOrder)", at: base + 28)
        }
        let count = Int(bytes.littleEndian(at: base + 20, as: UInt32.self))
        let entriesStart = base + Self.headerSize
        guard count <= (bytes.count - entriesStart) / Self.entrySize else {
            throw fail("\(count) entries do not fit in the \(bytes.count)-byte file", at: base + 20)
        }
        func string(at relative: UInt32, entry: Int) throws(SharedLibraryError) -> String {
            let start = base + Int(relative)
            guard start < bytes.count, let end = bytes[start...].firstIndex(of: 0) else {
                throw fail("string offset \(relative) is outside the file or unterminated", at: entry)
            }
            return String(decoding: bytes[start..<end], as: UTF8.self)
        }
        var entriesByName: [String: [Entry]] = [:]
        entriesByName.reserveCapacity(count)
        for index in 0..<count {
            let at = entriesStart + index * Self.entrySize
            let name = try string(at: bytes.littleEndian(at: at + 4), entry: at)
            let entry = Entry(
                flags: bytes.littleEndian(at: at),
                hwcap: bytes.littleEndian(at: at + 16),
                path: try string(at: bytes.littleEndian(at: at + 8), entry: at)
            )
            entriesByName[name, default: []].append(entry)
        }
        self.entriesByName = entriesByName
    }

    /// The path ld.so would take from the cache for `name` on `machine`, if any.
    func path(for name: String, machine: ELFMachine) -> String? {
        let flags = Self.abiFlags(machine)
        return entriesByName[name]?.first { $0.flags == flags && $0.hwcap == 0 }?.path
    }

    /// `FLAG_ELF_LIBC6` plus the per-architecture 64-bit flag glibc's `_dl_cache_check_flags` requires.
    private static func abiFlags(_ machine: ELFMachine) -> Int32 {
        switch machine {
        case .x86_64: 0x0303
        case .aarch64: 0x0A03
        }
    }

    /// Offset of the `glibc-ld.so.cache1.1` header: 0, or after the legacy table in a combined file.
    private static func newHeaderOffset(_ bytes: [UInt8], path: String) throws(SharedLibraryError) -> Int {
        func hasNewHeader(at offset: Int) -> Bool {
            offset >= 0 && bytes.count - offset >= headerSize && Array(bytes[offset..<offset + newMagic.count]) == newMagic
        }
        if hasNewHeader(at: 0) { return 0 }
        guard bytes.count >= legacyHeaderSize, Array(bytes[0..<legacyMagic.count]) == legacyMagic else {
            throw SharedLibraryError(.malformedLoaderCache, "neither glibc-ld.so.cache1.1 nor ld.so-1.7.0 magic", path: path, offset: 0)
        }
        let legacyCount = Int(bytes.littleEndian(at: 12, as: UInt32.self))
        let legacyEnd = legacyHeaderSize + legacyCount * legacyEntrySize
        let aligned = (legacyEnd + 7) & ~7
        guard hasNewHeader(at: aligned) else {
            throw SharedLibraryError(.malformedLoaderCache, "legacy ld.so-1.7.0 cache without a glibc-ld.so.cache1.1 section after its \(legacyCount) entries", path: path, offset: UInt64(min(aligned, bytes.count)))
        }
        return aligned
    }
}
