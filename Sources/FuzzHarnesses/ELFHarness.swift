#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Sandbox
import SystemPackage

/// The shared-library resolver on a hostile executable (its PT_INTERP, RPATH/RUNPATH and NEEDED names
/// then lead to real host files, which the resolver must treat just as carefully).
enum ELFHarness {
    /// One scratch file per process, rewritten for each input.
    static let path: String = {
        var template = Array("/tmp/sandboxd-fuzz-elf-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { fatalError("mkstemp") }
        close(fd)
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    static func run(_ bytes: UnsafeRawBufferPointer) {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { fatalError("open \(path)") }
        var written = 0
        while written < bytes.count {
            let count = write(fd, bytes.baseAddress! + written, bytes.count - written)
            guard count > 0 else { fatalError("write \(path)") }
            written += count
        }
        close(fd)
        // A fresh resolver: its memo is keyed by path and fingerprint, which a rewrite within one
        // second and of equal size would not change.
        _ = try? SharedLibraryResolver(configuration: .init(maximumLibraries: 64)).resolve(executable: FilePath(path))
    }
}
