#if canImport(Glibc)
import Glibc
#endif
import Logging
@testable import Sandbox
import SystemPackage
import Testing

/// Builds the static probes once per test process; tests skip (loudly) when no static toolchain.
enum Probe {
    struct Built: Sendable {
        let directory: String
        let probe: String
        let truePath: String
        let notExecutable: String
    }

    static let built: Result<Built, ProbeUnavailable> = build()

    static var available: Bool { if case .success = built { true } else { false } }
    static var unavailableReason: Comment {
        if case .failure(let reason) = built { return Comment(rawValue: "probe unavailable: \(reason.reason)") }
        return "probe available"
    }

    struct ProbeUnavailable: Error, Sendable { let reason: String }

    private static func build() -> Result<Built, ProbeUnavailable> {
        guard let cc = (["/usr/bin/cc", "/usr/bin/gcc", "/usr/local/bin/cc"] as [String]).first(where: { access($0, X_OK) == 0 }) else {
            return .failure(ProbeUnavailable(reason: "no C compiler (cc) found"))
        }
        let libc: [String] = ["/usr/lib/x86_64-linux-gnu/libc.a", "/usr/lib/aarch64-linux-gnu/libc.a", "/usr/lib/libc.a", "/usr/lib64/libc.a"]
        guard libc.contains(where: { access($0, R_OK) == 0 }) else {
            return .failure(ProbeUnavailable(reason: "no static libc (libc.a; apt-get install libc6-dev)"))
        }
        let directory = TempDirectory.make(prefix: "sbx-probe")
        for (name, source) in [("probe", probeSource), ("true", trueSource)] {
            writeFile("\(directory)/\(name).c", source)
            let status = system("\(cc) -static -O2 -o \(directory)/\(name) \(directory)/\(name).c 2>\(directory)/\(name).log")
            guard status == 0 else {
                return .failure(ProbeUnavailable(reason: "cc -static failed for \(name).c (status \(status)); see \(directory)/\(name).log"))
            }
        }
        writeFile("\(directory)/not-executable", "#!/bin/sh\nexit 0\n", mode: 0o644)
        return .success(Built(directory: directory, probe: "\(directory)/probe", truePath: "\(directory)/true",
                              notExecutable: "\(directory)/not-executable"))
    }
}

func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    precondition(fd >= 0, "open \(path): \(errno)")
    let bytes = Array(text.utf8)
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    precondition(written == bytes.count)
    fchmod(fd, mode)
    close(fd)
}

func readFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        result += buffer[0..<count]
    }
    return String(decoding: result, as: UTF8.self)
}

enum TempDirectory {
    /// A fresh directory under /tmp, mode 0755.
    static func make(prefix: String) -> String {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { buffer -> String in
            guard let result = mkdtemp(buffer.baseAddress!) else { fatalError("mkdtemp: \(errno)") }
            return String(cString: result)
        }
        chmod(path, 0o755)
        return path
    }

    /// Removes a directory made by ``make(prefix:)`` (and everything in it).
    static func remove(_ path: String) {
        precondition(path.hasPrefix("/tmp/sbx-"))
        _ = system("rm -rf '\(path)'")
    }
}

/// What the probe printed, by key (keys may repeat: `env`).
struct Observations: CustomStringConvertible {
    var lines: [(String, String)] = []

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            lines.append((String(line[..<equals]), String(line[line.index(after: equals)...])))
        }
    }

    subscript(_ key: String) -> String? { lines.first { $0.0 == key }?.1 }
    func all(_ key: String) -> [String] { lines.filter { $0.0 == key }.map(\.1) }
    var description: String { lines.map { "\($0.0)=\($0.1)" }.joined(separator: "\n") }
}

let testLogger = Logger(label: "sandbox-tests")

/// Runs a spec to completion, collecting stdout (and stderr) fully.
func runToCompletion(_ backend: any SandboxBackend, _ spec: SandboxSpec) async throws -> (Sandbox.ExitStatus, Observations, String) {
    let process = try await backend.spawn(spec)
    async let stderrText: String = {
        guard let stderr = process.standardError else { return "" }
        var bytes: [UInt8] = []
        for await chunk in stderr { bytes += chunk }
        return String(decoding: bytes, as: UTF8.self)
    }()
    var bytes: [UInt8] = []
    if let stdout = process.standardOutput {
        for await chunk in stdout { bytes += chunk }
    }
    let status = await process.waitForExit()
    let errText = await stderrText
    return (status, Observations(String(decoding: bytes, as: UTF8.self)), errText)
}

let isRoot = getuid() == 0

/// The spec that exercises everything the issue lists: RO/RW/device binds, data files (one under /tmp),
/// an exact environment, and probe actions that read, write and chmod each of them.
enum FullSpec {
    /// Creates `ro/file` and a world-writable `rw` in `dir` for the binds.
    static func make(probe: String, in dir: String) -> SandboxSpec {
        mkdir("\(dir)/ro", 0o755)
        mkdir("\(dir)/rw", 0o777)
        chmod("\(dir)/rw", 0o777)
        writeFile("\(dir)/ro/file", "read-only-content\n")
        return SandboxSpec(
            executable: FilePath(probe),
            arguments: ["read:/data/ro/file", "write:/data/ro/new", "write:/data/rw/new", "read:/etc/config.txt",
                        "write:/etc/config.txt", "chmod:/etc/config.txt", "read:/tmp/data.txt", "write:/tmp/data.txt",
                        "chmod:/tmp/data.txt", "devread:/dev/sgx_fake", "thread", "kill1"],
            environment: ["FOO": "bar", "EMPTY": "", "PATH": "/nowhere"],
            binds: [BindMount(source: FilePath("\(dir)/ro"), target: "/data/ro", mode: .readOnly),
                    BindMount(source: FilePath("\(dir)/rw"), target: "/data/rw", mode: .readWrite),
                    BindMount(source: "/dev/zero", target: "/dev/sgx_fake", mode: .device)],
            dataFiles: [DataFile(target: "/etc/config.txt", contents: Array("config-bytes".utf8)),
                        DataFile(target: "/tmp/data.txt", contents: Array("in-tmp".utf8))],
            bindSharedLibraries: false
        )
    }
}
