import Foundation
@testable import SandboxDaemon
import Testing

@Suite("runtime log files")
struct RuntimeLogFilesTests {
    @Test("levels, the last N lines, control bytes neutralised, rotation keeps the files bounded")
    func basics() throws {
        let directory = TemporaryDirectory()
        let files = RuntimeLogFiles(directory: directory.path + "/logs", maxBytes: 4096)
        files.append(name: "rt", stream: "stdout", line: Array(#"{"msg":"hi","level":"INFO"}"#.utf8))
        files.append(name: "rt", stream: "stderr", line: Array("plain \u{1B}[31mred".utf8))
        files.append(name: "rt", stream: "stdout", line: Array(#"{"level":"ERRO"}"#.utf8))
        var text = String(decoding: files.read(name: "rt", lines: nil, follow: false).snapshot, as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].hasSuffix(#" INFO stdout {"msg":"hi","level":"INFO"}"#), "\(lines[0])")
        #expect(lines[1].hasSuffix(" WARNING stderr plain ?[31mred"), "\(lines[1])")
        #expect(lines[2].contains(" ERROR stdout "))
        text = String(decoding: files.read(name: "rt", lines: 1, follow: false).snapshot, as: UTF8.self)
        #expect(text.split(separator: "\n") == [lines[2]])
        #expect(files.read(name: "rt", lines: 0, follow: false).snapshot.isEmpty)
        #expect(files.read(name: "nobody", lines: nil, follow: false).snapshot.isEmpty)

        for index in 0..<500 { files.append(name: "rt", stream: "stdout", line: Array("line \(index)".utf8)) }
        let current = try FileManager.default.attributesOfItem(atPath: directory.path + "/logs/rt.log")[.size] as? Int ?? .max
        let previous = try FileManager.default.attributesOfItem(atPath: directory.path + "/logs/rt.log.1")[.size] as? Int ?? .max
        #expect(current <= 4096 && previous <= 4096, "\(current) \(previous)")
        let tail = String(decoding: files.read(name: "rt", lines: 2, follow: false).snapshot, as: UTF8.self)
        #expect(tail.split(separator: "\n").map { String($0.split(separator: " ").suffix(2).joined(separator: " ")) } == ["line 498", "line 499"])
    }

    @Test("a follower gets every later line, and ends at finish")
    func follow() async {
        let directory = TemporaryDirectory()
        let files = RuntimeLogFiles(directory: directory.path + "/logs")
        files.append(name: "rt", stream: "stdout", line: Array("before".utf8))
        let (snapshot, live) = files.read(name: "rt", lines: nil, follow: true)
        #expect(String(decoding: snapshot, as: UTF8.self).contains("before"))
        files.append(name: "rt", stream: "stdout", line: Array("after".utf8))
        files.finish()
        var chunks: [String] = []
        for await chunk in live! { chunks.append(String(decoding: chunk, as: UTF8.self)) }
        #expect(chunks.count == 1 && chunks[0].contains("after"), "\(chunks)")
    }
}
