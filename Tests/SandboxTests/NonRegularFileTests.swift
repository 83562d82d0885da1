import Foundation
@testable import Sandbox
import SystemPackage
import Testing

/// Hostile PT_INTERP / RPATH names: the resolver must not even open a non-regular file (issue #11, attack 5).
///
/// Opening a device node acts (`/dev/watchdog` arms on open), so these tests watch FIFOs with inotify:
/// `IN_OPEN` is reported for every real open and never for an `O_PATH` handle.
@Suite("Resolver never opens non-regular files")
struct NonRegularFileTests {
    let resolver = SharedLibraryResolver()

    /// Counts IN_OPEN events on the watched paths.
    final class OpenWatch {
        let fd: Int32
        init(_ paths: [String]) throws {
            fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
            guard fd >= 0 else { throw LibraryToolFailure("inotify_init1: errno \(errno)") }
            for path in paths where inotify_add_watch(fd, path, UInt32(IN_OPEN)) < 0 {
                throw LibraryToolFailure("inotify_add_watch(\(path)): errno \(errno)")
            }
        }
        deinit { close(fd) }

        var opens: Int {
            var buffer = [UInt8](repeating: 0, count: 4096)
            var count = 0
            while true {
                let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                guard got > 0 else { return count }
                var offset = 0
                while offset < got {
                    let mask = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self) }
                    let length = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self) }
                    if mask & UInt32(IN_OPEN) != 0 { count += 1 }
                    offset += 16 + Int(length)
                }
            }
        }
    }

    @Test("a FIFO as PT_INTERP is refused without being opened")
    func fifoInterpreter() throws {
        let scratch = try LibraryScratchDirectory("hostile-interp")
        let fifo = scratch.file("interp.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let source = try scratch.write("main.c", "int main(void) { return 0; }\n")
        try LibraryTools.runChecked(LibraryTools.cc, ["-o", scratch.file("main"), source, "-Wl,--dynamic-linker=\(fifo)"])
        let watch = try OpenWatch([fifo])
        // Sanity: the watch does see a real open.
        let probe = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        #expect(probe >= 0)
        close(probe)
        #expect(watch.opens == 1, "inotify reports a real open of the FIFO")

        let error = #expect(throws: SharedLibraryError.self) { try resolver.resolve(executable: FilePath(scratch.file("main"))) }
        #expect(error?.code == .notRegularFile)
        #expect(watch.opens == 0, "the resolver opened the FIFO named by PT_INTERP")
    }

    @Test("a FIFO found through RPATH is refused without being opened")
    func fifoLibrary() throws {
        let scratch = try LibraryScratchDirectory("hostile-rpath")
        let library = try scratch.write("lib.c", "int hostile(void) { return 1; }\n")
        try FileManager.default.createDirectory(atPath: scratch.file("real"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch.file("evil"), withIntermediateDirectories: true)
        try LibraryTools.runChecked(LibraryTools.cc, ["-shared", "-fPIC", "-o", scratch.file("real/libhostile.so"), library])
        let source = try scratch.write("main.c", "int hostile(void); int main(void) { return hostile(); }\n")
        try LibraryTools.runChecked(LibraryTools.cc, [
            "-o", scratch.file("main"), source, "-L" + scratch.file("real"), "-lhostile",
            "-Wl,--disable-new-dtags,-rpath," + scratch.file("evil"),
        ])
        let fifo = scratch.file("evil/libhostile.so")
        #expect(mkfifo(fifo, 0o600) == 0)
        let watch = try OpenWatch([fifo])
        #expect(throws: SharedLibraryError.self) { try resolver.resolve(executable: FilePath(scratch.file("main"))) }
        #expect(watch.opens == 0, "the resolver opened the FIFO found through RPATH")
    }

    @Test("a regular library still resolves through the O_PATH check")
    func regularStillWorks() throws {
        let resolved = try resolver.resolve(executable: "/bin/sh")
        #expect(resolved.interpreter != nil)
        #expect(!resolved.libraries.isEmpty)
    }
}
