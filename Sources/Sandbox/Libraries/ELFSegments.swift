/// One program header the loader cares about.
struct ELFSegment: Sendable {
    enum Kind: UInt32, Sendable {
        case load = 1
        case dynamic = 2
        case interpreter = 3
    }

    var kind: Kind
    var offset: UInt64
    var virtualAddress: UInt64
    var fileSize: UInt64
    /// Where this program header sits in the file, for error reports.
    var headerOffset: UInt64
}

/// The `PT_LOAD`, `PT_DYNAMIC` and `PT_INTERP` entries of an ELF64 program header table.
struct ProgramHeaderTable: Sendable {
    static let entrySize = 56
    static let maximumEntries = 1 << 16
    private static let extendedNumbering: UInt16 = 0xFFFF

    var segments: [ELFSegment] = []

    init(file: LibraryFile, header: ELFHeader) throws(SharedLibraryError) {
        let count = try Self.entryCount(file: file, header: header)
        guard count > 0 else { return }
        guard header.programHeaderEntrySize == UInt16(Self.entrySize) else {
            throw SharedLibraryError(.malformedELF, "program header entry size \(header.programHeaderEntrySize), expected \(Self.entrySize)", path: file.path, offset: 54)
        }
        let bytes = try file.read(at: header.programHeaderOffset, count: count * Self.entrySize, what: "program header table")
        for index in 0..<count {
            let base = index * Self.entrySize
            guard let kind = ELFSegment.Kind(rawValue: bytes.littleEndian(at: base)) else { continue }
            let segment = ELFSegment(
                kind: kind,
                offset: bytes.littleEndian(at: base + 8),
                virtualAddress: bytes.littleEndian(at: base + 16),
                fileSize: bytes.littleEndian(at: base + 32),
                headerOffset: header.programHeaderOffset + UInt64(base)
            )
            guard segment.offset <= file.size, segment.fileSize <= file.size - segment.offset else {
                throw SharedLibraryError(.malformedELF, "segment (type \(kind.rawValue)) of \(segment.fileSize) bytes at \(segment.offset) extends past the \(file.size)-byte file", path: file.path, offset: segment.headerOffset)
            }
            segments.append(segment)
        }
    }

    func first(ofType kind: ELFSegment.Kind) -> ELFSegment? {
        segments.first { $0.kind == kind }
    }

    /// The file offset holding virtual address `address`, and the file offset where its segment's file data ends.
    func fileRange(containing address: UInt64) -> (offset: UInt64, end: UInt64)? {
        for segment in segments where segment.kind == .load {
            guard address >= segment.virtualAddress else { continue }
            let delta = address - segment.virtualAddress
            guard delta < segment.fileSize else { continue }
            return (segment.offset + delta, segment.offset + segment.fileSize)
        }
        return nil
    }

    /// `e_phnum`, or with `PN_XNUM` the real count from section header 0's `sh_info`.
    private static func entryCount(file: LibraryFile, header: ELFHeader) throws(SharedLibraryError) -> Int {
        guard header.programHeaderCount == extendedNumbering else { return Int(header.programHeaderCount) }
        guard header.sectionHeaderOffset != 0, header.sectionHeaderEntrySize == 64 else {
            throw SharedLibraryError(.malformedELF, "e_phnum is PN_XNUM but there is no usable section header 0", path: file.path, offset: 56)
        }
        let section = try file.read(at: header.sectionHeaderOffset, count: 64, what: "section header 0")
        let count = Int(section.littleEndian(at: 44, as: UInt32.self))
        guard count <= maximumEntries else {
            throw SharedLibraryError(.limitExceeded, "\(count) program headers (limit \(maximumEntries))", path: file.path, offset: header.sectionHeaderOffset + 44)
        }
        return count
    }
}

/// The entries of `PT_DYNAMIC` that decide what gets loaded; string values are still table offsets.
struct DynamicSection: Sendable {
    static let entrySize = 16
    static let maximumSize = 1 << 20
    static let nodeflibFlag: UInt64 = 0x800

    private enum Tag: Int64 {
        case null = 0
        case needed = 1
        case stringTable = 5
        case stringTableSize = 10
        case soname = 14
        case rpath = 15
        case runpath = 29
        case flags1 = 0x6FFF_FFFB
    }

    var needed: [UInt64] = []
    var runpath: UInt64?
    var rpath: UInt64?
    var soname: UInt64?
    var stringTableAddress: UInt64?
    var stringTableSize: UInt64?
    var flags1: UInt64 = 0
    /// Where `PT_DYNAMIC` starts in the file, for error reports.
    var fileOffset: UInt64

    init(file: LibraryFile, segment: ELFSegment) throws(SharedLibraryError) {
        fileOffset = segment.offset
        guard segment.fileSize <= UInt64(Self.maximumSize) else {
            throw SharedLibraryError(.limitExceeded, "PT_DYNAMIC of \(segment.fileSize) bytes (limit \(Self.maximumSize))", path: file.path, offset: segment.headerOffset)
        }
        let count = Int(segment.fileSize) / Self.entrySize
        let bytes = try file.read(at: segment.offset, count: count * Self.entrySize, what: "PT_DYNAMIC")
        for index in 0..<count {
            let base = index * Self.entrySize
            let value: UInt64 = bytes.littleEndian(at: base + 8)
            guard let tag = Tag(rawValue: bytes.littleEndian(at: base)) else { continue }
            switch tag {
            case .null: return
            case .needed: needed.append(value)
            case .stringTable: stringTableAddress = value
            case .stringTableSize: stringTableSize = value
            case .soname: soname = value
            case .rpath: rpath = value
            case .runpath: runpath = value
            case .flags1: flags1 = value
            }
        }
    }

    /// The dynamic string table located through the `PT_LOAD` segment that maps `DT_STRTAB`.
    func stringTable(in segments: ProgramHeaderTable, file: LibraryFile) throws(SharedLibraryError) -> DynamicStringTable {
        let referencesStrings = !needed.isEmpty || runpath != nil || rpath != nil || soname != nil
        guard referencesStrings else { return DynamicStringTable(file: file, start: 0, end: 0) }
        guard let address = stringTableAddress else {
            throw SharedLibraryError(.malformedELF, "dynamic section names strings but has no DT_STRTAB", path: file.path, offset: fileOffset)
        }
        guard let range = segments.fileRange(containing: address) else {
            throw SharedLibraryError(.malformedELF, "DT_STRTAB address \(address) is not inside any PT_LOAD segment's file data", path: file.path, offset: fileOffset)
        }
        var end = range.end
        if let size = stringTableSize {
            let (declaredEnd, overflow) = range.offset.addingReportingOverflow(size)
            if !overflow { end = min(end, declaredEnd) }
        }
        return DynamicStringTable(file: file, start: range.offset, end: end)
    }
}

/// `DT_STRTAB` as a file range; strings must end inside it.
struct DynamicStringTable {
    let file: LibraryFile
    let start: UInt64
    let end: UInt64

    func string(at offset: UInt64, what: String) throws(SharedLibraryError) -> String {
        let (position, overflow) = start.addingReportingOverflow(offset)
        guard !overflow, position < end else {
            throw SharedLibraryError(.malformedELF, "\(what) string offset \(offset) is outside the \(end - start)-byte string table", path: file.path, offset: start)
        }
        return try file.string(at: position, before: end, what: what)
    }
}
