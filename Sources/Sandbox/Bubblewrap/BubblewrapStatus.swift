/// What bwrap reported on its `--json-status-fd`, read so far.
///
/// bwrap writes `{ "child-pid": N, … }` once it has cloned the sandbox (before building it: N is the
/// sandbox's PID 1 in our pid namespace) and `{ "exit-code": N }` only if the runtime's `execve`
/// succeeded, when it exits. A bwrap that exits without the second line never ran the runtime: its
/// setup (or the exec) failed. Only bwrap writes here, one object per line; members we do not know
/// are ignored, so a minimal scan for the two numeric members is enough.
struct BubblewrapStatus: Sendable, Hashable {
    var childPID: Int32?
    var exitCode: Int32?

    init(childPID: Int32? = nil, exitCode: Int32? = nil) {
        self.childPID = childPID
        self.exitCode = exitCode
    }

    /// Parses the status lines received so far (a trailing partial line is ignored).
    init(parsing bytes: [UInt8]) {
        var lineStart = 0
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            let line = bytes[lineStart..<index]
            lineStart = index + 1
            if childPID == nil, let value = Self.member("child-pid", in: line) { childPID = value }
            if exitCode == nil, let value = Self.member("exit-code", in: line) { exitCode = value }
        }
    }

    /// The integer value of `"name": N` in one JSON object line.
    private static func member(_ name: String, in line: ArraySlice<UInt8>) -> Int32? {
        let key = Array("\"\(name)\"".utf8)
        guard line.count >= key.count else { return nil }
        var start = line.startIndex
        while start + key.count <= line.endIndex {
            if line[start..<start + key.count].elementsEqual(key) { break }
            start += 1
        }
        guard start + key.count <= line.endIndex else { return nil }
        var index = start + key.count
        func skipSpaces() { while index < line.endIndex, line[index] == UInt8(ascii: " ") || line[index] == UInt8(ascii: "\t") { index += 1 } }
        skipSpaces()
        guard index < line.endIndex, line[index] == UInt8(ascii: ":") else { return nil }
        index += 1
        skipSpaces()
        var negative = false
        if index < line.endIndex, line[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        var value: Int64 = 0
        var digits = 0
        while index < line.endIndex, line[index] >= UInt8(ascii: "0"), line[index] <= UInt8(ascii: "9"), digits < 11 {
            value = value * 10 + Int64(line[index] - UInt8(ascii: "0"))
            index += 1
            digits += 1
        }
        guard digits > 0 else { return nil }
        return Int32(exactly: negative ? -value : value)
    }
}
