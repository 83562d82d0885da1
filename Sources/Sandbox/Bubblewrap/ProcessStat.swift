#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The parent pid and command name of a host process, from `/proc/PID/stat`.
///
/// Used to find bwrap's runtime process: the kernel renames a process to the file name it executes,
/// so a child of the sandbox's PID 1 that is no longer called `bwrap` has executed the runtime.
/// (`/proc/PID/task/TID/children` would be simpler but needs `CONFIG_PROC_CHILDREN`, which not every
/// kernel has.)
struct ProcessStat: Sendable, Hashable {
    var pid: Int32
    var parent: Int32
    var command: String

    /// `nil` when the process does not exist (any more).
    init?(pid: Int32) {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        self.init(pid: pid, stat: buffer[0..<count])
    }

    /// Parses `PID (COMMAND) STATE PPID …`; the command may itself contain spaces and parentheses.
    init?(pid: Int32, stat: ArraySlice<UInt8>) {
        guard let open = stat.firstIndex(of: UInt8(ascii: "(")),
              let close = stat.lastIndex(of: UInt8(ascii: ")")), open < close else { return nil }
        let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count >= 2, let parent = Int32(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        self.pid = pid
        self.parent = parent
        self.command = String(decoding: stat[(open + 1)..<close], as: UTF8.self)
    }

    /// The first process whose parent is `parent`: the pids just above it first (pids are handed out
    /// in order), every process when `scanAll`.
    static func child(of parent: Int32, scanAll: Bool) -> ProcessStat? {
        for candidate in (parent + 1)...(parent + 4) {
            if let stat = ProcessStat(pid: candidate), stat.parent == parent { return stat }
        }
        guard scanAll, let directory = opendir("/proc") else { return nil }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = Int32(name), let stat = ProcessStat(pid: pid), stat.parent == parent else { continue }
            return stat
        }
        return nil
    }
}

extension ProcessStat {
    /// Pids of every process whose real uid is `uid` (from `/proc/PID/status`).
    static func processes(ownedBy uid: UInt32) -> [Int32] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var found: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = Int32(name), realUID(of: pid) == uid else { continue }
            found.append(pid)
        }
        return found
    }

    /// The real uid of `pid`, `nil` when it is gone.
    static func realUID(of pid: Int32) -> UInt32? {
        let fd = open("/proc/\(pid)/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 2048)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        for line in buffer[0..<count].split(separator: UInt8(ascii: "\n")) where line.starts(with: Array("Uid:".utf8)) {
            let fields = line.dropFirst(4).split(whereSeparator: { $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: " ") })
            return fields.first.flatMap { UInt32(String(decoding: $0, as: UTF8.self)) }
        }
        return nil
    }
}
