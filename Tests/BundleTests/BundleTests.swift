@testable import Bundle
import Foundation
import Logging
import Testing

struct HashTests {
    /// FIPS 180-4 example vectors for SHA-512/256.
    @Test func nistVectors() {
        #expect(Hex.encode(SHA512_256.hash([])) == "c672b8d1ef56ed28ab87c3622c5114069bdd3ad7b8f9737498d0c01ecef0967a")
        #expect(Hex.encode(SHA512_256.hash(Array("abc".utf8))) == "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23")
        let long = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
        #expect(Hex.encode(SHA512_256.hash(Array(long.utf8))) == "3928e184fb8690f840da3988121d31be65cb9d3ef83ee6146feac861e19b563a")
    }

    @Test func incrementalEqualsOneShot() {
        let data = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var hasher = SHA512_256()
        hasher.update(Array(data[0..<77]))
        hasher.update(Array(data[77...]))
        #expect(hasher.finalize() == SHA512_256.hash(data))
    }

    /// The legacy-version rule: a non-zero top-level version is copied into the RONL component and that
    /// component's version is left out of the hash.
    @Test func legacyVersionRule() throws {
        let base: [String: Any] = [
            "id": BundleBuilder.runtimeID, "version": ["major": 3, "minor": 1, "patch": 4],
            "components": [["kind": "ronl", "elf": ["executable": "a"], "version": ["major": 9]]],
        ]
        let manifest = try BundleManifest.parse(json: Array(try JSONSerialization.data(withJSONObject: base)))
        #expect(manifest.components[0].version == ComponentVersion(major: 3, minor: 1, patch: 4))
        var other = base
        other["components"] = [["kind": "ronl", "elf": ["executable": "a"]]]
        let second = try BundleManifest.parse(json: Array(try JSONSerialization.data(withJSONObject: other)))
        #expect(manifest.hash == second.hash)
    }
}

struct OpenValidateTests {
    let scratch: Scratch
    var directory: URL { scratch.url }

    init() throws { scratch = try Scratch("bundle") }

    func open(_ builder: BundleBuilder, extra: [ZipWriter.Member] = [], limits: BundleLimits = BundleLimits()) throws(BundleError) -> RuntimeBundle {
        let path = try! builder.write(to: directory, extra: extra)
        return try RuntimeBundle.open(path: path, limits: limits)
    }

    func verdict(_ builder: BundleBuilder) throws -> BundleError? {
        try open(builder).verdict
    }

    @Test func componentizedRONL() throws {
        let bundle = try open(.ronl())
        #expect(bundle.verdict == nil)
        let selected = try bundle.manifest.select(component: "ronl")
        #expect(selected.executable == "runtime.bin")
        #expect(selected.version == ComponentVersion(major: 1, minor: 2, patch: 3))
        #expect(!selected.networkAllowed)
    }

    @Test func legacyManifest() throws {
        let builder = BundleBuilder(
            manifest: ["id": BundleBuilder.runtimeID, "executable": "rt", "version": ["major": 2]], files: [("rt", [1, 2, 3])]
        )
        let bundle = try open(builder)
        #expect(bundle.verdict == nil)
        #expect(bundle.manifest.isLegacy)
        let selected = try bundle.manifest.select(component: "ronl")
        #expect(selected.executable == "rt")
        #expect(selected.version == ComponentVersion(major: 2))
    }

    @Test func ronlAndROFL() throws {
        var builder = BundleBuilder.ronl()
        var components = builder.manifest["components"] as! [[String: Any]]
        components.append(["kind": "rofl", "name": "my-rofl", "version": ["minor": 1], "elf": ["executable": "rofl.bin"]])
        components.append(["kind": "rofl", "name": "enclave", "sgx": ["executable": "rofl.sgxs"]])
        builder.manifest["components"] = components
        builder.files += [("rofl.bin", [9, 9]), ("rofl.sgxs", [7])]
        let bundle = try open(builder)
        #expect(bundle.verdict == nil)
        let rofl = try bundle.manifest.select(component: "rofl.my-rofl")
        #expect(rofl.networkAllowed && rofl.executable == "rofl.bin")
        #expect(throws: BundleError.self) { try bundle.manifest.select(component: "rofl.nope") }
        let error = try #require(throws: BundleError.self) { try bundle.manifest.select(component: "rofl.enclave") }
        #expect(error.code == .unsupportedComponent)
        #expect(error.message.contains("SGX"))
    }

    static let failureLabels = [
        "ronl-named", "ronl-disabled", "ronl-no-exe", "rofl-short", "rofl-long", "rofl-chars", "unknown-kind",
        "two-tees", "duplicate", "missing-file",
    ]

    static func failureCase(_ label: String) -> ([[String: Any]], String) {
        let all: [(String, [[String: Any]], String)] = [
            ("ronl-named", [["kind": "ronl", "name": "x", "elf": ["executable": "runtime.bin"]]], "RONL component must have an empty name"),
            ("ronl-disabled", [["kind": "ronl", "disabled": true, "elf": ["executable": "runtime.bin"]]], "cannot be disabled"),
            ("ronl-no-exe", [["kind": "ronl"]], "RONL component must define an executable"),
            ("rofl-short", [["kind": "rofl", "name": "ab", "elf": ["executable": "runtime.bin"]]], "at least 3 characters"),
            ("rofl-long", [["kind": "rofl", "name": String(repeating: "a", count: 129), "elf": ["executable": "runtime.bin"]]], "at most 128"),
            ("rofl-chars", [["kind": "rofl", "name": "a.b.c", "elf": ["executable": "runtime.bin"]]], "name is invalid"),
            ("unknown-kind", [["kind": "vm", "elf": ["executable": "runtime.bin"]]], "unknown component kind"),
            ("two-tees", [["kind": "ronl", "elf": ["executable": "runtime.bin"], "sgx": ["executable": "runtime.bin"],
                       "tdx": ["firmware": "runtime.bin", "resources": ["memory": 16, "cpus": 1]]]], "single TEE"),
            ("duplicate", [["kind": "rofl", "name": "abc", "elf": ["executable": "runtime.bin"]],
                       ["kind": "rofl", "name": "abc", "elf": ["executable": "runtime.bin"]]], "already exists"),
            ("missing-file", [["kind": "ronl", "elf": ["executable": "absent.bin"]]], "missing ronl: ELF executable in bundle"),
        ]
        let found = all.first { $0.0 == label }!
        return (found.1, found.2)
    }

    @Test(arguments: failureLabels)
    func validationFailure(_ label: String) throws {
        let (components, message) = Self.failureCase(label)
        var builder = BundleBuilder.ronl()
        builder.manifest["components"] = components
        let error = try #require(try verdict(builder), "\(label) must be rejected")
        #expect(error.message.contains(message), "\(label): \(error.message)")
    }

    @Test func legacyAndComponentizedRONL() throws {
        var builder = BundleBuilder.ronl()
        builder.manifest["executable"] = "runtime.bin"
        #expect(try verdict(builder)?.message.contains("both legacy and componentized RONL") == true)
    }

    @Test func tamperedDigest() throws {
        var builder = BundleBuilder.ronl()
        builder.digestOverrides["runtime.bin"] = String(repeating: "ab", count: 32)
        let error = try #require(try verdict(builder))
        #expect(error.code == .digestMismatch && error.message == "invalid digest: 'runtime.bin'")
    }

    @Test func missingDigest() throws {
        var builder = BundleBuilder.ronl()
        builder.files.append(("notes.txt", Array("hi".utf8)))
        builder.digestOverrides["notes.txt"] = .some(nil)
        let error = try #require(try verdict(builder))
        #expect(error.message == "missing digest: 'notes.txt'")
    }

    @Test func manifestNotFirst() throws {
        var builder = BundleBuilder.ronl()
        builder.manifestFirst = false
        let error = try #require(try verdict(builder))
        #expect(error.code == .invalidManifest && error.message.contains("'runtime.bin'"))
    }

    @Test func nestedPath() throws {
        var builder = BundleBuilder.ronl()
        builder.files.append(("bin/tool", [1]))
        let error = try #require(try verdict(builder))
        #expect(error.message.contains("failed to sanitize path 'bin/tool'"))
    }

    @Test(arguments: ["../evil", "/etc/passwd", "a/../../b", "..", "a\\b"])
    func traversalIsRefusedAtOnce(_ name: String) throws {
        let error = try #require(throws: BundleError.self) {
            try open(.ronl(), extra: [ZipWriter.Member(name: name, contents: [1])])
        }
        #expect(error.code == .invalidEntryName)
        #expect(error.message.contains(name))
    }

    @Test func symlinkEntry() throws {
        let error = try #require(throws: BundleError.self) {
            try open(.ronl(), extra: [ZipWriter.Member(name: "link", contents: Array("/etc/shadow".utf8), unixMode: 0o120777)])
        }
        #expect(error.code == .unsupportedEntry && error.message == "entry 'link' is a symbolic link")
    }

    @Test func specialEntries() throws {
        for (mode, name) in [(UInt32(0o020644), "chardev"), (0o010644, "fifo"), (0o040755, "dir")] {
            let error = try #require(throws: BundleError.self) {
                try open(.ronl(), extra: [ZipWriter.Member(name: name, contents: [], unixMode: mode)])
            }
            #expect(error.code == .unsupportedEntry && error.message.contains("'\(name)'"))
        }
    }

    @Test func duplicateEntryNames() throws {
        let error = try #require(throws: BundleError.self) {
            try open(.ronl(), extra: [ZipWriter.Member(name: "runtime.bin", contents: [1])])
        }
        #expect(error.code == .invalidEntryName && error.message == "entry 'runtime.bin' appears more than once")
    }

    @Test func zipBombByRatio() throws {
        let zeros = [UInt8](repeating: 0, count: 8 << 20)
        let error = try #require(throws: BundleError.self) {
            try open(.ronl(), extra: [ZipWriter.Member(name: "bomb", contents: zeros)])
        }
        #expect(error.code == .limitExceeded && error.message.contains("'bomb'") && error.message.contains("ratio"))
    }

    /// An entry that claims to be small but inflates to much more is stopped at its claim.
    @Test func lyingSizeIsStoppedWhileInflating() throws {
        let zeros = [UInt8](repeating: 0, count: 4 << 20)
        let error = try #require(throws: BundleError.self) {
            try open(.ronl(), extra: [ZipWriter.Member(name: "liar", contents: zeros, claimedSize: 1000)])
        }
        #expect(error.code == .limitExceeded && error.message.contains("'liar' inflates past its declared size"))
    }

    @Test func sizeLimits() throws {
        var limits = BundleLimits()
        limits.maxFileSize = 1000
        var error = try #require(throws: BundleError.self) {
            try open(.ronl(), extra: [ZipWriter.Member(name: "big", contents: [UInt8](repeating: 7, count: 2000))], limits: limits)
        }
        #expect(error.code == .limitExceeded && error.message.contains("'big'") && error.message.contains("per-file"))
        limits = BundleLimits()
        limits.maxTotalSize = 3000
        error = try #require(throws: BundleError.self) {
            try open(.ronl(), extra: [ZipWriter.Member(name: "big", contents: [UInt8](repeating: 7, count: 3000))], limits: limits)
        }
        #expect(error.code == .limitExceeded && error.message.contains("total size"))
        limits = BundleLimits()
        limits.maxEntries = 2
        error = try #require(throws: BundleError.self) {
            try open(.ronl(), extra: [ZipWriter.Member(name: "third", contents: [1])], limits: limits)
        }
        #expect(error.code == .limitExceeded && error.message.contains("3 entries"))
    }

    @Test func corruptDeflateDataIsRefused() throws {
        var bytes = BundleBuilder.ronl(executable: (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) }).archive()
        // Flip bytes in the middle of the executable's deflate stream.
        let marker = Array("runtime.bin".utf8)
        let at = (0..<bytes.count - marker.count).first { Array(bytes[$0..<$0 + marker.count]) == marker }! + marker.count + 20
        for i in at..<at + 40 { bytes[i] ^= 0x5a }
        let path = directory.appendingPathComponent("corrupt.orc").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: BundleError.self) { try RuntimeBundle.open(path: path) }
        #expect(error.code == .malformedArchive || error.code == .limitExceeded)
        #expect(error.message.contains("runtime.bin"))
    }

    @Test func pinnedHash() throws {
        let path = try BundleBuilder.ronl().write(to: directory)
        let bundle = try RuntimeBundle.open(path: path)
        _ = try RuntimeBundle.open(path: path, pinnedManifestHash: bundle.manifestHash)
        let error = try #require(throws: BundleError.self) {
            try RuntimeBundle.open(path: path, pinnedManifestHash: [UInt8](repeating: 1, count: 32))
        }
        #expect(error.code == .manifestHashMismatch && error.message.contains(bundle.manifestHashHex))
    }

    @Test func fifoOrDeviceIsRefusedWithoutBlocking() throws {
        let fifo = directory.appendingPathComponent("fifo.orc").path
        #expect(mkfifo(fifo, 0o600) == 0)
        for path in [fifo, "/dev/zero", directory.path] {
            let error = try #require(throws: BundleError.self) { try RuntimeBundle.open(path: path) }
            #expect(error.code == .unreadable && error.message.contains("not a regular file"), "\(path): \(error)")
        }
    }

    @Test func notAZipFile() throws {
        let path = directory.appendingPathComponent("junk.orc").path
        try Data(repeating: 0x41, count: 5000).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: BundleError.self) { try RuntimeBundle.open(path: path) }
        #expect(error.code == .malformedArchive)
    }
}

struct ExplodeTests {
    let scratch: Scratch
    var directory: URL { scratch.url }
    let store: BundleStore

    init() throws {
        scratch = try Scratch("explode")
        let directory = scratch.url
        store = BundleStore(root: directory.appendingPathComponent("bundles").path, logger: Logger(label: "test"))
    }

    @Test func explodesWithModesAndIsIdempotent() throws {
        var builder = BundleBuilder.ronl()
        builder.files.append(("data.txt", Array("data".utf8)))
        let path = try builder.write(to: directory)
        let first = try store.prepare(bundle: path)
        #expect(first.directory.hasSuffix("/bundles/\(first.manifestHashHex)"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: first.path(of: "runtime.bin"))) == Data("#!elf".utf8))
        func mode(_ path: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as! NSNumber).intValue
        }
        #expect(try mode(first.path(of: "runtime.bin")) == 0o755)
        #expect(try mode(first.path(of: "data.txt")) == 0o644)
        #expect(try mode(first.directory) == 0o755)
        let inode = try FileManager.default.attributesOfItem(atPath: first.path(of: "runtime.bin"))[.systemFileNumber] as! NSNumber
        let second = try store.prepare(bundle: path)
        #expect(second.directory == first.directory)
        // Verified in place, not rewritten.
        #expect(try FileManager.default.attributesOfItem(atPath: second.path(of: "runtime.bin"))[.systemFileNumber] as! NSNumber == inode)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: store.root).filter { $0.hasPrefix(".tmp") }
        #expect(leftovers.isEmpty)
    }

    @Test(arguments: ["modify", "extra", "remove", "chmod", "symlink"])
    func corruptedTreeIsReplaced(_ damage: String) throws {
        let path = try BundleBuilder.ronl().write(to: directory)
        let exploded = try store.prepare(bundle: path)
        let target = exploded.path(of: "runtime.bin")
        switch damage {
        case "modify": try Data("evil".utf8).write(to: URL(fileURLWithPath: target))
        case "extra": try Data("x".utf8).write(to: URL(fileURLWithPath: exploded.path(of: "planted")))
        case "remove": try FileManager.default.removeItem(atPath: target)
        case "chmod": try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: target)
        default:
            try FileManager.default.removeItem(atPath: target)
            try FileManager.default.createSymbolicLink(atPath: target, withDestinationPath: "/bin/sh")
        }
        let again = try store.prepare(bundle: path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: again.path(of: "runtime.bin"))) == Data("#!elf".utf8))
        #expect(!FileManager.default.fileExists(atPath: again.path(of: "planted")))
        let attributes = try FileManager.default.attributesOfItem(atPath: again.path(of: "runtime.bin"))
        #expect(attributes[.type] as? FileAttributeType == .typeRegular)
        #expect((attributes[.posixPermissions] as! NSNumber).intValue == 0o755)
    }

    @Test func abandonedExtractionsAreRemoved() throws {
        try FileManager.default.createDirectory(atPath: store.root, withIntermediateDirectories: true)
        // pid 0x7ffffff0 does not exist; our own pid's temporaries are left alone (in progress).
        let abandoned = "\(store.root)/.tmp-abc-2147483632-7", ours = "\(store.root)/.tmp-abc-\(getpid())-7"
        try FileManager.default.createDirectory(atPath: abandoned, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: ours, withIntermediateDirectories: false)
        _ = try store.prepare(bundle: try BundleBuilder.ronl().write(to: directory))
        #expect(!FileManager.default.fileExists(atPath: abandoned))
        #expect(FileManager.default.fileExists(atPath: ours))
    }

    @Test func invalidBundleIsNotExploded() throws {
        var builder = BundleBuilder.ronl()
        builder.digestOverrides["runtime.bin"] = String(repeating: "00", count: 32)
        let path = try builder.write(to: directory)
        #expect(throws: BundleError.self) { try store.prepare(bundle: path) }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: store.root)) ?? []
        #expect(contents.isEmpty)
    }

    @Test func changedBundleUnderPinnedHashFails() throws {
        let path = try BundleBuilder.ronl().write(to: directory)
        let first = try store.prepare(bundle: path)
        let pinned = Hex.decode(first.manifestHashHex, count: 32)!
        try BundleBuilder.ronl(version: ["major": 9]).write(to: directory)
        let error = try #require(throws: BundleError.self) { try store.prepare(bundle: path, pinnedManifestHash: pinned) }
        #expect(error.code == .manifestHashMismatch)
    }
}
