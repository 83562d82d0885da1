import Foundation
@testable import Sandbox
import Testing

/// Test inputs for the shared-library resolver: compiled programs, crafted caches, corrupted ELF files.
enum LibraryFixtures {
    struct Sample: Sendable, CustomTestStringConvertible {
        var label: String
        var bytes: [UInt8]
        var expected: SharedLibraryError.Code
        var testDescription: String { label }
    }

    enum SearchPathTag {
        /// `DT_RPATH` (`--disable-new-dtags`).
        case rpath
        /// `DT_RUNPATH` (`--enable-new-dtags`).
        case runpath

        var linkerFlag: String { self == .rpath ? "-Wl,--disable-new-dtags" : "-Wl,--enable-new-dtags" }
    }

    /// A Swift "hello" whose runtime libraries come through `DT_RUNPATH` (swiftc's default on Linux).
    static func swiftHello(in scratch: LibraryScratchDirectory) throws -> String {
        guard let swiftc = LibraryTools.swiftc else { throw LibraryToolFailure("no swiftc") }
        let source = try scratch.write("hello.swift", "print(\"hello from a sandbox\")\n")
        let output = scratch.file("hello")
        try LibraryTools.runChecked(swiftc, ["-module-cache-path", scratch.file("module-cache"), "-o", output, source])
        return output
    }

    /// `bin/app` → `bin/lib/libdemo_a.so` → `bin/lib/libdemo_b.so`; prints "demo 42".
    ///
    /// The executable carries `executableSearchPath` as `tag`. With `intermediateFindsLeaf` the middle
    /// library carries `DT_RUNPATH=$ORIGIN` and finds the leaf itself; without, the leaf is only reachable
    /// through a search path inherited from the executable (which only `DT_RPATH` is).
    static func chain(
        in scratch: LibraryScratchDirectory,
        executableSearchPath: String,
        tag: SearchPathTag,
        intermediateFindsLeaf: Bool
    ) throws -> String {
        let leaf = try scratch.write("src/b.c", "int demo_b(void) { return 42; }\n")
        let middle = try scratch.write("src/a.c", "int demo_b(void);\nint demo_a(void) { return demo_b(); }\n")
        let main = try scratch.write("src/main.c", """
            #include <stdio.h>
            int demo_a(void);
            int main(void) { printf("demo %d\\n", demo_a()); return 0; }

            """)
        let libraries = scratch.file("bin/lib")
        try FileManager.default.createDirectory(atPath: libraries, withIntermediateDirectories: true)
        let cc = LibraryTools.cc
        try LibraryTools.runChecked(cc, ["-shared", "-fPIC", "-Wl,-soname,libdemo_b.so", "-o", libraries + "/libdemo_b.so", leaf])
        var middleFlags = ["-shared", "-fPIC", "-Wl,-soname,libdemo_a.so", "-o", libraries + "/libdemo_a.so", middle, "-L" + libraries, "-ldemo_b"]
        if intermediateFindsLeaf { middleFlags += ["-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN"] }
        try LibraryTools.runChecked(cc, middleFlags)
        let app = scratch.file("bin/app")
        try LibraryTools.runChecked(cc, [
            "-o", app, main, "-L" + libraries, "-ldemo_a", "-Wl,-rpath-link," + libraries,
            tag.linkerFlag, "-Wl,-rpath," + executableSearchPath,
        ])
        return app
    }

    /// `app` whose `DT_NEEDED` is the absolute path of `lib/libnosoname.so` (linked by path, no soname);
    /// prints "path 42".
    static func pathNeeded(in scratch: LibraryScratchDirectory) throws -> String {
        let library = try scratch.write("src/lib.c", "int answer(void) { return 42; }\n")
        let main = try scratch.write("src/main.c", """
            #include <stdio.h>
            int answer(void);
            int main(void) { printf("path %d\\n", answer()); return 0; }

            """)
        try FileManager.default.createDirectory(atPath: scratch.file("lib"), withIntermediateDirectories: true)
        try LibraryTools.runChecked(LibraryTools.cc, ["-shared", "-fPIC", "-o", scratch.file("lib/libnosoname.so"), library])
        try LibraryTools.runChecked(LibraryTools.cc, ["-o", scratch.file("app"), main, scratch.file("lib/libnosoname.so")])
        return scratch.file("app")
    }

    /// `bin/app` (`DT_RUNPATH=$ORIGIN/lib`) → `bin/lib/libnd.so`, which has `DF_1_NODEFLIB` and needs
    /// `libm.so.6`: ld.so may not look for libm in the cache or the default directories.
    static func noDefaultLibraries(in scratch: LibraryScratchDirectory) throws -> String {
        let library = try scratch.write("src/nd.c", "#include <math.h>\ndouble nd(double x) { return cos(x); }\n")
        let main = try scratch.write("src/main.c", """
            #include <stdio.h>
            double nd(double);
            int main(void) { printf("%g\\n", nd(0)); return 0; }

            """)
        let libraries = scratch.file("bin/lib")
        try FileManager.default.createDirectory(atPath: libraries, withIntermediateDirectories: true)
        try LibraryTools.runChecked(LibraryTools.cc, ["-shared", "-fPIC", "-Wl,-soname,libnd.so", "-Wl,-z,nodefaultlib", "-o", libraries + "/libnd.so", library, "-lm"])
        try LibraryTools.runChecked(LibraryTools.cc, [
            "-o", scratch.file("bin/app"), main, "-L" + libraries, "-lnd", "-Wl,-rpath-link," + libraries,
            "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/lib",
        ])
        return scratch.file("bin/app")
    }

    /// A PIE with `PT_INTERP` and a dynamic section but no `DT_NEEDED`; `_start` exits 0.
    static func interpreterOnly(in scratch: LibraryScratchDirectory) throws -> String {
        let source = try scratch.write("start.c", """
            void _start(void) { __asm__ volatile("mov $60, %eax\\n xor %edi, %edi\\n syscall"); }

            """)
        try LibraryTools.runChecked(LibraryTools.cc, ["-nostdlib", "-fPIE", "-pie", "-o", scratch.file("start"), source])
        return scratch.file("start")
    }

    static func bytes(of path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    // MARK: ld.so.cache

    /// A `glibc-ld.so.cache1.1` image with string offsets relative to its header, as ldconfig writes them.
    static func newFormatCache(entries: [(name: String, path: String, flags: Int32, hwcap: UInt64)]) -> [UInt8] {
        let headerSize = 48
        let stringsStart = headerSize + 24 * entries.count
        var strings: [UInt8] = []
        var table: [UInt8] = []
        func intern(_ text: String) -> UInt32 {
            let offset = UInt32(stringsStart + strings.count)
            strings += Array(text.utf8) + [0]
            return offset
        }
        for entry in entries {
            table += littleEndian(entry.flags)
            table += littleEndian(intern(entry.name))
            table += littleEndian(intern(entry.path))
            table += littleEndian(UInt32(0))
            table += littleEndian(entry.hwcap)
        }
        var header = Array("glibc-ld.so.cache1.1".utf8)
        header += littleEndian(UInt32(entries.count))
        header += littleEndian(UInt32(strings.count))
        header += [2, 0, 0, 0]
        header += littleEndian(UInt32(0))
        header += [UInt8](repeating: 0, count: 12)
        return header + table + strings
    }

    static func malformedCaches() -> [Sample] {
        let valid = newFormatCache(entries: [(name: "libz.so.1", path: "/lib/libz.so.1", flags: 0x0303, hwcap: 0)])
        func patched(_ label: String, _ change: (inout [UInt8]) -> Void) -> Sample {
            var bytes = valid
            change(&bytes)
            return Sample(label: label, bytes: bytes, expected: .malformedLoaderCache)
        }
        var legacyOnly = Array("ld.so-1.7.0".utf8) + [0] + littleEndian(UInt32(1)) + [UInt8](repeating: 0, count: 12)
        legacyOnly += [UInt8](repeating: 0, count: 4)
        let legacyHuge = Array("ld.so-1.7.0".utf8) + [0] + littleEndian(UInt32.max) + valid
        return [
            Sample(label: "empty", bytes: [], expected: .malformedLoaderCache),
            Sample(label: "text", bytes: Array("not a cache at all, just text\n".utf8), expected: .malformedLoaderCache),
            Sample(label: "header cut short", bytes: Array(valid.prefix(30)), expected: .malformedLoaderCache),
            patched("entry count past end") { $0.replaceSubrange(20..<24, with: littleEndian(UInt32(1000))) },
            patched("name offset past end") { $0.replaceSubrange(52..<56, with: littleEndian(UInt32(1 << 30))) },
            patched("path unterminated") { $0[$0.count - 1] = UInt8(ascii: "x") },
            patched("big-endian marker") { $0[28] = 3 },
            Sample(label: "legacy table without new section", bytes: legacyOnly, expected: .malformedLoaderCache),
            Sample(label: "legacy count overflows", bytes: legacyHuge, expected: .malformedLoaderCache),
        ]
    }

    // MARK: Corrupted executables

    /// `/usr/bin/ls` with one structure broken at a time.
    static func malformedExecutables() throws -> [Sample] {
        let original = try bytes(of: "/usr/bin/ls")
        let elf = ParsedFixture(original)
        func patched(_ label: String, _ expected: SharedLibraryError.Code, _ change: (inout [UInt8]) -> Void) -> Sample {
            var bytes = original
            change(&bytes)
            return Sample(label: label, bytes: bytes, expected: expected)
        }
        let interp = elf.programHeader(type: 3)
        let dynamic = elf.programHeader(type: 2)
        let needed = elf.dynamicEntry(tag: 1)
        let stringTable = elf.dynamicEntry(tag: 5)
        return [
            Sample(label: "empty file", bytes: [], expected: .truncatedFile),
            Sample(label: "truncated header", bytes: Array(original.prefix(40)), expected: .truncatedFile),
            Sample(label: "shell script", bytes: Array("#!/bin/sh\necho hi\n".utf8), expected: .notELF),
            patched("bad magic", .notELF) { $0[1] = UInt8(ascii: "X") },
            patched("32-bit class", .unsupportedClass) { $0[4] = 1 },
            patched("big-endian", .unsupportedByteOrder) { $0[5] = 2 },
            patched("unknown machine", .unsupportedMachine) { $0.set(UInt16(3), at: 18) },
            patched("relocatable object", .unsupportedObjectType) { $0.set(UInt16(1), at: 16) },
            patched("program headers past end", .truncatedFile) { $0.set(UInt64($0.count - 10), at: 32) },
            patched("program header offset overflow", .truncatedFile) { $0.set(UInt64.max - 5, at: 32) },
            patched("wrong program header size", .malformedELF) { $0.set(UInt16(32), at: 54) },
            patched("PN_XNUM without section headers", .malformedELF) { $0.set(UInt16(0xFFFF), at: 56); $0.set(UInt64(0), at: 40) },
            patched("PT_DYNAMIC past end", .malformedELF) { $0.set(UInt64($0.count + 100), at: dynamic + 8) },
            patched("PT_DYNAMIC size overflow", .malformedELF) { $0.set(UInt64.max, at: dynamic + 32) },
            patched("PT_INTERP unterminated", .malformedELF) { $0.set(UInt64(5), at: interp + 32) },
            patched("PT_INTERP longer than a path", .limitExceeded) { $0.set(UInt64(20000), at: interp + 32) },
            patched("DT_NEEDED outside string table", .malformedELF) { $0.set(UInt64(0xFFFF_FFFF), at: needed + 8) },
            patched("DT_STRTAB outside PT_LOAD", .malformedELF) { $0.set(UInt64(0xDEAD_0000_0000), at: stringTable + 8) },
            Sample(label: "cut in half", bytes: Array(original.prefix(original.count / 2)), expected: .malformedELF),
        ]
    }

    /// Offsets of structures inside a well-formed ELF64 fixture.
    private struct ParsedFixture {
        let bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        func programHeader(type: UInt32) -> Int {
            let offset = Int(bytes.littleEndian(at: 32, as: UInt64.self))
            let count = Int(bytes.littleEndian(at: 56, as: UInt16.self))
            return (0..<count).map { offset + $0 * 56 }.first { bytes.littleEndian(at: $0, as: UInt32.self) == type }!
        }

        func dynamicEntry(tag: Int64) -> Int {
            let start = Int(bytes.littleEndian(at: programHeader(type: 2) + 8, as: UInt64.self))
            return stride(from: start, to: bytes.count, by: 16).first { bytes.littleEndian(at: $0, as: Int64.self) == tag }!
        }
    }
}

extension Array where Element == UInt8 {
    mutating func set<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        replaceSubrange(offset..<offset + MemoryLayout<T>.size, with: LibraryFixtures.littleEndian(value))
    }
}
