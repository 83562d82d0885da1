// `make bench-bundle`: how long exploding a 50 MB runtime bundle takes (fresh explode, re-verify of an
// existing directory, and open+validate alone), median of several runs.
import Bundle
import Foundation
import Logging

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func measure(_ runs: Int, _ body: () throws -> Void) rethrows -> [Double] {
    var times: [Double] = []
    for _ in 0..<runs {
        let start = ContinuousClock.now
        try body()
        let elapsed = ContinuousClock.now - start
        times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
    return times
}

let arguments = CommandLine.arguments
let megabytes = arguments.count > 1 ? Int(arguments[1]) ?? 50 : 50
let runs = arguments.count > 2 ? Int(arguments[2]) ?? 5 : 5

// Executable-like content: a 40 MB "binary" plus 10 MB of smaller files, as a real paratime bundle (ELF +
// SGXS + signature) is shaped. Half of each 256-byte run repeats one of 32 recent "code" blocks, the
// rest is low-entropy noise: deflates about 2.5:1, like a stripped x86-64 executable.
struct Generator {
    var state: UInt64 = 0x9e37_79b9_7f4a_7c15
    var pool: [[UInt8]] = []

    mutating func random() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state
    }

    mutating func block() -> [UInt8] {
        if pool.count == 32, random() >> 63 == 0 { return pool[Int(random() >> 59)] }
        let fresh = (0..<256).map { _ in UInt8(truncatingIfNeeded: random() >> 58) &* 3 }
        if pool.count == 32 { pool[Int(random() >> 59)] = fresh } else { pool.append(fresh) }
        return fresh
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count + 256)
        while out.count < count { out += block() }
        return Array(out.prefix(count))
    }
}

func makeFiles(megabytes: Int) -> [(String, [UInt8])] {
    var generator = Generator()
    var files: [(String, [UInt8])] = [("runtime.elf", generator.bytes(megabytes * 4 / 5 * 1_048_576))]
    for index in 0..<10 {
        files.append(("asset-\(index).bin", generator.bytes(megabytes * 1_048_576 / 5 / 10)))
    }
    return files
}
let files = makeFiles(megabytes: megabytes)
var digests: [String: String] = [:]
for (name, bytes) in files { digests[name] = Hex.encode(SHA512_256.hash(bytes)) }
let manifest: [String: Any] = [
    "name": "bench", "id": String(repeating: "ab", count: 32),
    "components": [["kind": "ronl", "version": ["major": 1], "elf": ["executable": "runtime.elf"]]],
    "digests": digests,
]
var writer = ZipWriter()
writer.add(RuntimeBundle.manifestName, Array(try JSONSerialization.data(withJSONObject: manifest)))
for (name, bytes) in files { writer.add(name, bytes) }
let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("bench-bundle-\(getpid())")
try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: work) }
let path = work.appendingPathComponent("bench.orc").path
let archive = writer.archive()
try Data(archive).write(to: URL(fileURLWithPath: path))
let total = files.reduce(0) { $0 + $1.1.count }
print(String(format: "bundle: %.1f MB uncompressed in %d files, %.1f MB on disk", Double(total) / 1e6, files.count, Double(archive.count) / 1e6))

var logger = Logger(label: "bench-bundle")
logger.logLevel = .error
var round = 0
let fresh = try measure(runs) {
    round += 1
    let store = BundleStore(root: work.appendingPathComponent("fresh-\(round)").path, logger: logger)
    _ = try store.prepare(bundle: path)
}
let store = BundleStore(root: work.appendingPathComponent("fresh-1").path, logger: logger)
let verify = try measure(runs) { _ = try store.prepare(bundle: path) }
let open = try measure(runs) { try RuntimeBundle.open(path: path).validate() }
print(String(format: "explode (fresh):          median %.3f s  (min %.3f, %d runs)", median(fresh), fresh.min()!, runs))
print(String(format: "explode (re-verify):      median %.3f s  (min %.3f)", median(verify), verify.min()!))
print(String(format: "open + validate only:     median %.3f s  (min %.3f)", median(open), open.min()!))
print(String(format: "fresh explode throughput: %.0f MB/s uncompressed", Double(total) / 1e6 / median(fresh)))
