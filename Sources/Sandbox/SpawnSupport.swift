#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
import SystemPackage

/// C strings and pointer arrays that must outlive a spawn; freed together.
final class CStringArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    func string(_ text: String) -> UnsafeMutablePointer<CChar> {
        let pointer = strdup(text)!
        allocations.append(UnsafeMutableRawPointer(pointer))
        return pointer
    }

    /// A NULL-terminated `char *[]`.
    func array(_ texts: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let pointer = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: texts.count + 1)
        for (index, text) in texts.enumerated() { pointer[index] = string(text) }
        pointer[texts.count] = nil
        allocations.append(UnsafeMutableRawPointer(pointer))
        return pointer
    }

    deinit {
        for pointer in allocations { free(pointer) }
    }
}

/// Descriptors opened for one spawn; whatever is not handed on is closed.
struct DescriptorBag: ~Copyable {
    var fds: [CInt] = []
    mutating func add(_ fd: CInt) -> CInt {
        fds.append(fd)
        return fd
    }
    mutating func forget(_ fd: CInt) { fds.removeAll { $0 == fd } }
    deinit { for fd in fds { close(fd) } }
}

enum SpawnSupport {
    /// Descriptors the new process joins the spec's cgroups through, in `bag`: copies of the spec's
    /// pre-opened ``SandboxSpec/cgroupPlacement``, else opened now from ``SandboxSpec/cgroupDirectories``.
    /// `cloneInto` is a v2 directory for `CLONE_INTO_CGROUP` (-1: none); `selfJoin`: v1 `tasks` files the
    /// child writes "0" to itself (see ``CgroupPlacement``).
    static func cgroupJoin(_ spec: SandboxSpec, bag: inout DescriptorBag) throws(SandboxError)
        -> (fds: [Int32], cloneInto: Int32, selfJoin: Bool)
    {
        guard spec.cgroupPlacement != nil || !spec.cgroupDirectories.isEmpty else { return ([], -1, false) }
        let placement: CgroupPlacement
        if let given = spec.cgroupPlacement { placement = given } else { placement = try CgroupPlacement.open(spec.cgroupDirectories) }
        let (join, cloneInto) = try placement.duplicate()
        for fd in join { _ = bag.add(fd) }
        if cloneInto >= 0 { _ = bag.add(cloneInto) }
        return (join, cloneInto, placement.selfJoin)
    }

    /// tmpfs options with the spec's size, e.g. `mode=1777,size=67108864`.
    static func tmpfsOptions(_ base: String, _ limits: ProcessLimits) -> String {
        guard let bytes = limits.tmpfsBytes else { return base }
        return base + ",size=\(bytes)"
    }

    /// `/proc/sys/kernel/cap_last_cap`, read once (63 if unreadable: dropping unknown caps is harmless).
    static let lastCapability: Int32 = {
        let fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 63 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return 63 }
        let text = String(decoding: buffer[0..<count], as: UTF8.self).trimmingWhitespace()
        return Int32(text) ?? 63
    }()

    /// `realpath(3)`, or the errno.
    static func realPath(_ path: FilePath) -> Result<String, Errno> {
        guard let resolved = realpath(path.string, nil) else { return .failure(Errno(rawValue: errno)) }
        defer { free(resolved) }
        return .success(String(cString: resolved))
    }

    /// Checks an in-sandbox target: absolute, normalized, not `/`.
    static func validateTarget(_ target: FilePath, what: String) throws(SandboxError) {
        let text = target.string
        guard target.isAbsolute, !target.components.isEmpty,
              !target.components.contains(where: { $0.kind != .regular }),
              !text.utf8.contains(0), target.lexicallyNormalized() == target
        else {
            throw SandboxError(.invalidSpec, "\(what): target \(text.debugDescription) must be an absolute, normalized path other than /")
        }
    }

    /// `K=V` strings in key order; keys must be non-empty and free of `=` and NUL.
    static func environment(_ environment: [String: String]) throws(SandboxError) -> [String] {
        var result: [String] = []
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) {
            guard !key.isEmpty, !key.contains("="), !key.utf8.contains(0), !value.utf8.contains(0) else {
                throw SandboxError(.invalidSpec, "invalid environment variable \(key.debugDescription)")
            }
            result.append("\(key)=\(value)")
        }
        return result
    }

    static func checkArguments(_ arguments: [String]) throws(SandboxError) {
        if arguments.contains(where: { $0.utf8.contains(0) }) {
            throw SandboxError(.invalidSpec, "an argument contains a NUL byte")
        }
    }

    static func inheritedDescriptors(_ fds: [FileDescriptor]) throws(SandboxError) -> [Int32] {
        let numbers = fds.map(\.rawValue)
        if let bad = numbers.first(where: { $0 <= 2 }) {
            throw SandboxError(.invalidSpec, "inherited descriptor \(bad) is stdio; use the output dispositions")
        }
        if numbers.count > Int(SBX_MAX_KEEP_FDS) - 2 {
            throw SandboxError(.invalidSpec, "too many inherited descriptors (max \(Int(SBX_MAX_KEEP_FDS) - 2))")
        }
        return numbers
    }

    /// Opens the stdio ends for a spawn: (stdin, stdout, stderr, stdout reader, stderr reader).
    static func stdio(
        _ spec: SandboxSpec, bag: inout DescriptorBag
    ) throws(SandboxError) -> (CInt, CInt, CInt, CInt?, CInt?) {
        func openNull(_ flags: CInt) throws(SandboxError) -> CInt {
            let fd = open("/dev/null", flags | O_CLOEXEC)
            guard fd >= 0 else {
                throw SandboxError(.setupFailed, "cannot open /dev/null", stage: "stdio", errno: Errno(rawValue: errno))
            }
            return fd
        }
        func output(_ disposition: OutputDisposition, inherit: CInt, bag: inout DescriptorBag) throws(SandboxError) -> (CInt, CInt?) {
            switch disposition {
            case .inherit: return (inherit, nil)
            case .discard: return (bag.add(try openNull(O_WRONLY)), nil)
            case .pipe:
                var ends: [CInt] = [-1, -1]
                let rc = sbx_pipe_cloexec(&ends)
                guard rc == 0 else {
                    throw SandboxError(.setupFailed, "cannot create a pipe", stage: "stdio", errno: Errno(rawValue: rc))
                }
                return (bag.add(ends[1]), bag.add(ends[0]))
            }
        }
        let input = bag.add(try openNull(O_RDONLY))
        let (out, outReader) = try output(spec.standardOutput, inherit: 1, bag: &bag)
        let (err, errReader) = try output(spec.standardError, inherit: 2, bag: &bag)
        return (input, out, err, outReader, errReader)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
