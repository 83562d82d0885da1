#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemCalls
import SystemPackage

/// Small reads and writes of cgroupfs files, through the SystemCalls wrapper.
///
/// cgroup files are tiny; reads are bounded (`limit`) so a file never makes us allocate much.
enum CgroupFiles {
    static func read(_ path: FilePath, limit: Int = 256 * 1024) throws(CgroupError) -> String {
        let fd: Int32
        do {
            fd = try retryingInterrupts("open(\(path))") { open(path.string, O_RDONLY | O_CLOEXEC) }
        } catch {
            throw CgroupError(.io, "cannot open \(path)", errno: error.errno)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let count: Int
            do {
                count = try retryingInterrupts("read(\(path))") {
                    buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                }
            } catch {
                throw CgroupError(.io, "cannot read \(path)", errno: error.errno)
            }
            if count == 0 { break }
            bytes += buffer[0..<min(count, limit - bytes.count)]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func write(_ path: FilePath, _ text: String) throws(CgroupError) {
        let fd: Int32
        do {
            fd = try retryingInterrupts("open(\(path))") { open(path.string, O_WRONLY | O_CLOEXEC) }
        } catch {
            throw CgroupError(.io, "cannot open \(path) for writing", errno: error.errno)
        }
        defer { close(fd) }
        var utf8 = Array(text.utf8)
        let length = utf8.count
        do throws(SystemCallError) {
            let written = try retryingInterrupts("write(\(path))") {
                utf8.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            }
            guard written == length else { throw SystemCallError("write(\(path))", errno: .ioError) }
        } catch {
            throw CgroupError(.io, "cannot write \"\(text)\" to \(path)", errno: error.errno)
        }
    }

    static func exists(_ path: FilePath) -> Bool { access(path.string, F_OK) == 0 }

    /// `mkdir`; an existing directory is fine unless `exclusive`.
    static func makeDirectory(_ path: FilePath, exclusive: Bool = false) throws(CgroupError) {
        if mkdir(path.string, 0o755) != 0 && (exclusive || errno != EEXIST) {
            throw CgroupError(.io, "cannot create \(path)", errno: Errno(rawValue: errno))
        }
    }

    /// The value of `key` in a flat keyed file (`key value` per line), e.g. `oom_kill` in memory.events.
    static func keyed(_ text: String, _ key: String) -> UInt64? {
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == key { return UInt64(parts[1]) }
        }
        return nil
    }

    /// The `oom_kill` count of a v2 `memory.events` or v1 `memory.oom_control` text (0 where the kernel
    /// does not count kills).
    static func oomKillCount(_ text: String) -> UInt64 { keyed(text, "oom_kill") ?? 0 }

    /// A single number (`max` reads as nil).
    static func number(_ path: FilePath) -> UInt64? {
        guard let text = try? read(path, limit: 64) else { return nil }
        return UInt64(text.trimmingWhitespace())
    }

    /// Pids listed in a `cgroup.procs` file.
    static func pids(_ directory: FilePath) -> [Int32] {
        guard let text = try? read(directory.appending("cgroup.procs"), limit: 4 * 1024 * 1024) else { return [] }
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    /// Subdirectory names of `directory` (cgroups below it).
    static func subdirectories(_ directory: FilePath) -> [String] {
        guard let dir = opendir(directory.string) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
