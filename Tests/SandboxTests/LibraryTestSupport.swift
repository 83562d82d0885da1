import Foundation
import Testing

/// Scratch directory removed when the value is released.
final class LibraryScratchDirectory {
    let path: String

    init(_ label: String) throws {
        let template = NSTemporaryDirectory() + "sandbox-libs-\(label)-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw LibraryToolFailure("mkdtemp(\(template)) failed: errno \(errno)") }
        path = String(cString: made)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let target = file(name)
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: target, atomically: true, encoding: .utf8)
        return target
    }
}

extension LibraryScratchDirectory {
    @discardableResult
    func write(_ name: String, bytes: [UInt8]) throws -> String {
        let target = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }
}

struct LibraryToolFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct LibraryProcessResult {
    var status: Int32
    var standardOutput: String
    var standardError: String
}

enum LibraryTools {
    /// Runs a host program to completion, environment exactly `environment` (nothing inherited).
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = defaultEnvironment) throws -> LibraryProcessResult {
        let capture = try LibraryScratchDirectory("output")
        try capture.write("stdout", bytes: [])
        try capture.write("stderr", bytes: [])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: capture.file("stdout"))
        process.standardError = FileHandle(forWritingAtPath: capture.file("stderr"))
        try process.run()
        process.waitUntilExit()
        return LibraryProcessResult(
            status: process.terminationStatus,
            standardOutput: try String(contentsOfFile: capture.file("stdout"), encoding: .utf8),
            standardError: try String(contentsOfFile: capture.file("stderr"), encoding: .utf8)
        )
    }

    static let defaultEnvironment = ["PATH": "/usr/bin:/bin:/usr/sbin:/sbin"]

    /// Runs and requires exit status 0.
    @discardableResult
    static func runChecked(_ executable: String, _ arguments: [String], environment: [String: String] = defaultEnvironment) throws -> LibraryProcessResult {
        let result = try run(executable, arguments, environment: environment)
        guard result.status == 0 else {
            throw LibraryToolFailure("\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.standardError)\(result.standardOutput)")
        }
        return result
    }

    static func exists(_ path: String) -> Bool { FileManager.default.isExecutableFile(atPath: path) }

    static let cc = "/usr/bin/cc"
    static let swiftc: String? = {
        for candidate in ["/opt/swift/usr/bin/swiftc", "/usr/bin/swiftc"] where exists(candidate) { return candidate }
        return nil
    }()

    static var hasCC: Bool { exists(cc) }
    static var hasSwiftc: Bool { swiftc != nil }
    static var isRoot: Bool { getuid() == 0 }

    /// What `ldd` says `executable` loads: real paths, without the vDSO and the interpreter.
    static func lddLibraries(_ executable: String) throws -> Set<String> {
        let result = try runChecked("/usr/bin/ldd", [executable])
        var paths: Set<String> = []
        for line in result.standardOutput.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            let path: String
            if let arrow = parts.firstIndex(of: "=>") {
                guard arrow + 1 < parts.count else { continue }
                path = String(parts[arrow + 1])
            } else {
                guard let first = parts.first else { continue }
                path = String(first)
            }
            guard path.hasPrefix("/") else { continue }
            paths.insert(try realPath(path))
        }
        paths.remove(try realPath("/lib64/ld-linux-x86-64.so.2"))
        return paths
    }

    static func realPath(_ path: String) throws -> String {
        guard let resolved = realpath(path, nil) else { throw LibraryToolFailure("realpath(\(path)): errno \(errno)") }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
