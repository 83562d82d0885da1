import SystemCalls

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The few process and socket calls the benchmark needs, all through the project's syscall wrapper.
enum Processes {
    /// A listening UNIX stream socket at `path`.
    static func listen(at path: String) throws -> CInt {
        let fd = try retryingInterrupts("socket(AF_UNIX)") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        precondition(pathBytes.count < MemoryLayout.size(ofValue: address.sun_path), "socket path too long")
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: pathBytes)
            buffer[pathBytes.count] = 0
        }
        _ = try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                try retryingInterrupts("bind(\(path))") { bind(fd, generic, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        try retryingInterrupts("listen(\(path))") { Glibc.listen(fd, 1) }
        return fd
    }

    static func accept(_ fd: CInt) throws -> CInt {
        try retryingInterrupts("accept") { Glibc.accept(fd, nil, nil) }
    }

    /// Starts `path` with `arguments` (argv[0] included), inheriting stdio.
    static func spawn(_ path: String, _ arguments: [String]) throws -> pid_t {
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        try checkErrnoValue("posix_spawn(\(path))", posix_spawn(&pid, path, nil, nil, &argv, environ))
        return pid
    }

    /// Waits for `pid`; returns its exit status (or 128 + signal).
    @discardableResult
    static func wait(_ pid: pid_t) throws -> Int32 {
        var status: Int32 = 0
        try retryingInterrupts("waitpid(\(pid))") { waitpid(pid, &status, 0) }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Runs `path` with `arguments` and returns what it printed on stdout.
    static func output(of path: String, _ arguments: [String]) throws -> String {
        var fds: [CInt] = [0, 0]
        try retryingInterrupts("pipe") { pipe(&fds) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        try checkErrnoValue("posix_spawn(\(path))", posix_spawn(&pid, path, &actions, nil, &argv, environ))
        close(fds[1])
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try chunk.withUnsafeMutableBytes { buffer in
                try retryingInterrupts("read(pipe)") { read(fds[0], buffer.baseAddress, buffer.count) }
            }
            if count == 0 { break }
            output += chunk[0..<count]
        }
        close(fds[0])
        let status = try wait(pid)
        guard status == 0 else { throw BenchError("\(path) exited with status \(status)") }
        return String(decoding: output, as: UTF8.self)
    }

    /// The path of the running executable.
    static func ownExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
