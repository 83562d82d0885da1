import Bundle
import Foundation

/// Builds `.orc` archives for tests: a manifest (JSON object) plus files, digests filled in unless
/// overridden, written with ``ZipWriter`` in upstream's layout (manifest first).
struct BundleBuilder {
    var manifest: [String: Any]
    var files: [(name: String, contents: [UInt8])] = []
    /// Digests to write instead of the computed ones (nil value: leave the file out of `digests`).
    var digestOverrides: [String: String?] = [:]
    var manifestFirst = true

    static let runtimeID = "8000000000000000000000000000000000000000000000000000000000001234"

    /// A componentized RONL bundle with one ELF file.
    static func ronl(version: [String: Int] = ["major": 1, "minor": 2, "patch": 3], executable: [UInt8] = Array("#!elf".utf8)) -> BundleBuilder {
        BundleBuilder(
            manifest: [
                "name": "test-runtime", "id": runtimeID,
                "components": [["kind": "ronl", "version": version, "elf": ["executable": "runtime.bin"]]],
            ],
            files: [("runtime.bin", executable)]
        )
    }

    func manifestJSON() -> [UInt8] {
        var manifest = manifest
        var digests = manifest["digests"] as? [String: String] ?? [:]
        if manifest["digests"] == nil {
            for (name, contents) in files { digests[name] = Hex.encode(SHA512_256.hash(contents)) }
            for (name, value) in digestOverrides { digests[name] = value }
            manifest["digests"] = digests
        }
        return Array(try! JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]))
    }

    func archive(extra: [ZipWriter.Member] = []) -> [UInt8] {
        var writer = ZipWriter()
        let manifestMember = ZipWriter.Member(name: RuntimeBundle.manifestName, contents: manifestJSON())
        if manifestFirst { writer.members.append(manifestMember) }
        for (name, contents) in files { writer.add(name, contents) }
        if !manifestFirst { writer.members.append(manifestMember) }
        writer.members += extra
        return writer.archive()
    }

    /// Writes the archive to `directory/name` and returns the path.
    @discardableResult
    func write(to directory: URL, name: String = "bundle.orc", extra: [ZipWriter.Member] = []) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(archive(extra: extra)).write(to: url)
        return url.path
    }
}

/// A scratch directory removed when the test's suite instance goes away.
final class Scratch: Sendable {
    let url: URL
    init(_ label: String) throws { url = try temporaryDirectory(label) }
    deinit { try? FileManager.default.removeItem(at: url) }
}

func temporaryDirectory(_ label: String) throws -> URL {
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("sandboxd-\(label)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// `Tests/Fixtures/orc-fixtures`, found from this source file.
let fixturesDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/orc-fixtures")
