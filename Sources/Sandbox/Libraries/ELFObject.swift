/// What the dynamic loader reads from an ELF64 little-endian object before mapping it.
///
/// Only the parts that decide which files get loaded: machine, `PT_INTERP`, and from `PT_DYNAMIC` the
/// `DT_NEEDED` names, `DT_RUNPATH`, `DT_RPATH`, `DT_SONAME` and `DF_1_NODEFLIB`. Dynamic-section string
/// offsets are resolved through the `PT_LOAD` segment containing `DT_STRTAB`, as the loader does in memory.
/// Every offset and size is checked against the file and against fixed limits before it is used.
struct ELFObject: Sendable {
    var machine: ELFMachine
    /// `PT_INTERP`: the program interpreter path, `nil` for static executables and libraries.
    var interpreter: String?
    /// `DT_NEEDED` in file order.
    var needed: [String]
    /// `DT_RUNPATH`, unexpanded.
    var runpath: String?
    /// `DT_RPATH`, unexpanded; `nil` when `DT_RUNPATH` is present (the loader ignores it then).
    var rpath: String?
    var soname: String?
    /// `DF_1_NODEFLIB`: the loader skips `ld.so.cache` and the default directories for this object's needs.
    var noDefaultLibraries: Bool

    /// Reads the object behind `file`, whose header has already been read.
    init(file: LibraryFile, header: ELFHeader) throws(SharedLibraryError) {
        guard let machine = header.machine else {
            throw SharedLibraryError(.unsupportedMachine, "ELF machine \(header.machineNumber) is neither x86_64 (62) nor aarch64 (183)", path: file.path, offset: 18)
        }
        self.machine = machine
        let segments = try ProgramHeaderTable(file: file, header: header)

        if let interp = segments.first(ofType: .interpreter) {
            guard interp.fileSize <= UInt64(LibraryFile.maximumStringLength + 1) else {
                throw SharedLibraryError(.limitExceeded, "PT_INTERP of \(interp.fileSize) bytes is longer than a path can be", path: file.path, offset: interp.offset)
            }
            let bytes = try file.read(at: interp.offset, count: Int(interp.fileSize), what: "PT_INTERP")
            guard let terminator = bytes.firstIndex(of: 0), terminator > 0 else {
                throw SharedLibraryError(.malformedELF, "PT_INTERP is empty or not NUL-terminated", path: file.path, offset: interp.offset)
            }
            interpreter = String(decoding: bytes[..<terminator], as: UTF8.self)
        } else {
            interpreter = nil
        }

        guard let dynamicSegment = segments.first(ofType: .dynamic) else {
            needed = []
            noDefaultLibraries = false
            return
        }
        let dynamic = try DynamicSection(file: file, segment: dynamicSegment)
        let strings = try dynamic.stringTable(in: segments, file: file)

        needed = []
        needed.reserveCapacity(dynamic.needed.count)
        for offset in dynamic.needed {
            needed.append(try strings.string(at: offset, what: "DT_NEEDED"))
        }
        runpath = try dynamic.runpath.map { offset throws(SharedLibraryError) in try strings.string(at: offset, what: "DT_RUNPATH") }
        rpath = runpath != nil ? nil
            : try dynamic.rpath.map { offset throws(SharedLibraryError) in try strings.string(at: offset, what: "DT_RPATH") }
        soname = try dynamic.soname.map { offset throws(SharedLibraryError) in try strings.string(at: offset, what: "DT_SONAME") }
        noDefaultLibraries = dynamic.flags1 & DynamicSection.nodeflibFlag != 0
    }
}

/// The ELF machines the resolver supports, with the loader conventions that depend on them.
enum ELFMachine: UInt16, Sendable {
    case x86_64 = 62
    case aarch64 = 183

    /// Debian's multiarch tuple.
    var multiarchTuple: String {
        switch self {
        case .x86_64: "x86_64-linux-gnu"
        case .aarch64: "aarch64-linux-gnu"
        }
    }

    /// What ld.so substitutes for `$PLATFORM` (`AT_PLATFORM`).
    var platform: String {
        switch self {
        case .x86_64: "x86_64"
        case .aarch64: "aarch64"
        }
    }

    /// What Debian's ld.so substitutes for `$LIB` (observed with `LD_DEBUG=libs`: `lib/x86_64-linux-gnu`).
    var libDirectoryToken: String { "lib/\(multiarchTuple)" }
}

/// The 64-byte ELF file header, validated as far as the class allows.
struct ELFHeader: Sendable {
    enum ObjectType: Sendable, Equatable {
        case executable
        case sharedObject
        case other(UInt16)
    }

    static let size = 64
    static let magic: [UInt8] = [0x7F, 0x45, 0x4C, 0x46]

    /// `EI_CLASS`: 2 is ELF64.
    var elfClass: UInt8
    var machineNumber: UInt16
    var machine: ELFMachine? { ELFMachine(rawValue: machineNumber) }
    var type: ObjectType
    var programHeaderOffset: UInt64
    var programHeaderEntrySize: UInt16
    var programHeaderCount: UInt16
    var sectionHeaderOffset: UInt64
    var sectionHeaderEntrySize: UInt16

    var isELF64: Bool { elfClass == 2 }

    /// Reads and checks magic, byte order and version; the class is reported, not enforced, so a search can
    /// skip other-class candidates the way the loader does.
    init(file: LibraryFile) throws(SharedLibraryError) {
        guard file.size >= UInt64(Self.size) else {
            if file.size >= 4, try file.read(at: 0, count: 4, what: "ELF magic") != Self.magic {
                throw SharedLibraryError(.notELF, "no ELF magic", path: file.path, offset: 0)
            }
            throw SharedLibraryError(.truncatedFile, "\(file.size) bytes is shorter than an ELF header", path: file.path, offset: 0)
        }
        let bytes = try file.read(at: 0, count: Self.size, what: "ELF header")
        guard Array(bytes[0..<4]) == Self.magic else {
            throw SharedLibraryError(.notELF, "no ELF magic", path: file.path, offset: 0)
        }
        elfClass = bytes[4]
        guard bytes[5] == 1 else {
            if bytes[5] == 2 {
                throw SharedLibraryError(.unsupportedByteOrder, "big-endian ELF is not supported", path: file.path, offset: 5)
            }
            throw SharedLibraryError(.malformedELF, "unknown ELF data encoding \(bytes[5])", path: file.path, offset: 5)
        }
        guard bytes[6] == 1 else {
            throw SharedLibraryError(.malformedELF, "unknown ELF identification version \(bytes[6])", path: file.path, offset: 6)
        }
        // e_type and e_machine sit at the same offsets in both classes.
        switch bytes.littleEndian(at: 16, as: UInt16.self) {
        case 2: type = .executable
        case 3: type = .sharedObject
        case let other: type = .other(other)
        }
        machineNumber = bytes.littleEndian(at: 18)
        guard elfClass == 2 else {
            programHeaderOffset = 0
            programHeaderEntrySize = 0
            programHeaderCount = 0
            sectionHeaderOffset = 0
            sectionHeaderEntrySize = 0
            return
        }
        programHeaderOffset = bytes.littleEndian(at: 32)
        sectionHeaderOffset = bytes.littleEndian(at: 40)
        programHeaderEntrySize = bytes.littleEndian(at: 54)
        programHeaderCount = bytes.littleEndian(at: 56)
        sectionHeaderEntrySize = bytes.littleEndian(at: 58)
    }

    /// Throws unless this is an ELF64 x86_64 or aarch64 object.
    func requireSupported(_ path: String) throws(SharedLibraryError) {
        guard isELF64 else {
            let kind = elfClass == 1 ? "32-bit ELF" : "ELF class \(elfClass)"
            throw SharedLibraryError(.unsupportedClass, "\(kind) is not supported (ELF64 only)", path: path, offset: 4)
        }
        guard machine != nil else {
            throw SharedLibraryError(.unsupportedMachine, "ELF machine \(machineNumber) is neither x86_64 (62) nor aarch64 (183)", path: path, offset: 18)
        }
    }
}
