import Bundle
import Foundation
import Logging
import RuntimeHostProtocol
@testable import SandboxDaemon
import Testing

/// Bundle fields of the spec: validation, canonical document, persisted state, config, sandboxctl.
@Suite("Bundle specs")
struct BundleSpecTests {
    static let fixtures = ConfigTests.repository + "/Tests/Fixtures/orc-fixtures"
    let validator = SpecValidator(defaultBackend: .namespaces)

    func validate(_ json: String, _ validator: SpecValidator? = nil) throws(DaemonError) -> RuntimeSpecification {
        try (validator ?? self.validator).validate(try ControlAPI.decodeBody(Array(json.utf8)))
    }

    func hash(_ fixture: String) throws -> String {
        try RuntimeBundle.open(path: "\(Self.fixtures)/\(fixture)").manifestHashHex
    }

    @Test("a RONL bundle spec takes id, version and network from the manifest")
    func ronl() throws {
        let spec = try validate(#"{"name":"rt","bundle":"\#(Self.fixtures)/ronl-rofl.orc"}"#)
        let expectedHash = try hash("ronl-rofl.orc")
        #expect(spec.id == "8000000000000000000000000000000000000000000000000000000000f1c004")
        #expect(spec.expectedVersion == Version(major: 2))
        #expect(!spec.network)
        #expect(spec.executable.isEmpty)
        #expect(spec.bundle == .init(path: "\(Self.fixtures)/ronl-rofl.orc", component: "ronl", manifestHash: expectedHash))
        // The canonical document carries the bundle fields instead of an executable, and restores as is.
        guard case .object(let document) = spec.document else { Issue.record("not an object"); return }
        #expect(document["executable"] == nil && document["manifest_hash"] == .string(expectedHash))
        let restored = try SpecValidator(defaultBackend: .namespaces, checkFilesystem: false).validate(spec.document)
        #expect(restored == spec)
        #expect(try validator.validate(spec.document) == spec)
    }

    @Test("a ROFL component gets the network and no expected version")
    func rofl() throws {
        let spec = try validate(#"{"name":"rt","bundle":"\#(Self.fixtures)/ronl-rofl.orc","component":"rofl.my-rofl"}"#)
        #expect(spec.network && spec.expectedVersion == nil)
        #expect(spec.bundle?.component == "rofl.my-rofl")
        // Asking to take it away contradicts the component kind.
        #expect(throws: DaemonError.self) {
            try validate(#"{"name":"rt","bundle":"\#(Self.fixtures)/ronl-rofl.orc","component":"rofl.my-rofl","network":false}"#)
        }
    }

    @Test("refusals: 400 naming the field")
    func refusals() throws {
        let cases: [(String, DaemonError.Code, String)] = [
            (#"{"name":"a","bundle":"\#(Self.fixtures)/ronl.orc","executable":"/bin/true"}"#, .invalidSpec, "executable"),
            (#"{"name":"a","id":"\#(String(repeating: "ab", count: 32))","executable":"/bin/true","component":"ronl"}"#, .invalidSpec, "component"),
            (#"{"name":"a","bundle":"relative.orc"}"#, .invalidSpec, "bundle"),
            (#"{"name":"a","bundle":"\#(Self.fixtures)/ronl.orc","component":"vm"}"#, .invalidSpec, "component"),
            (#"{"name":"a","bundle":"\#(Self.fixtures)/ronl.orc","component":"rofl.absent"}"#, .invalidSpec, "component"),
            (#"{"name":"a","bundle":"\#(Self.fixtures)/ronl.orc","manifest_hash":"xyz"}"#, .invalidSpec, "manifest_hash"),
            (#"{"name":"a","bundle":"\#(Self.fixtures)/ronl.orc","manifest_hash":"\#(String(repeating: "0", count: 64))"}"#, .invalidSpec, "manifest_hash"),
            (#"{"name":"a","bundle":"\#(Self.fixtures)/ronl.orc","id":"\#(String(repeating: "0", count: 64))"}"#, .invalidSpec, "id"),
            (#"{"name":"a","bundle":"\#(Self.fixtures)/ronl-version.orc","expected_version":"1.0.0"}"#, .invalidSpec, "expected_version"),
            (#"{"name":"a","bundle":"\#(Self.fixtures)/invalid-digest.orc"}"#, .invalidSpec, "bundle"),
            (#"{"name":"a","bundle":"\#(Self.fixtures)/absent.orc"}"#, .invalidSpec, "bundle"),
            (#"{"name":"a","bundle":"\#(Self.fixtures)/ronl-rofl.orc","network":true}"#, .invalidSpec, "network"),
        ]
        for (json, code, field) in cases {
            let error = try #require(throws: DaemonError.self, "\(json)") { try validate(json) }
            #expect(error.code == code && error.field == field, "\(json): \(error)")
        }
        // The pinned hash passes; its field is the manifest's.
        _ = try validate(#"{"name":"a","bundle":"\#(Self.fixtures)/ronl.orc","manifest_hash":"\#(try hash("ronl.orc").uppercased())"}"#)
    }

    @Test("SGX/TDX-only components are unsupported_component (400)")
    func unsupported() throws {
        // ronl-elf-sgx.orc runs (it has ELF); build one whose ROFL has only TDX metadata.
        let directory = TemporaryDirectory()
        let manifest: [String: Any] = [
            "id": String(repeating: "ab", count: 32),
            "components": [["kind": "rofl", "name": "vm-app", "tdx": ["firmware": "fw.bin", "resources": ["memory": 512, "cpus": 1]]]],
            "digests": ["fw.bin": Hex.encode(SHA512_256.hash([1, 2]))],
        ]
        var writer = ZipWriter()
        writer.add(RuntimeBundle.manifestName, Array(try JSONSerialization.data(withJSONObject: manifest)))
        writer.add("fw.bin", [1, 2])
        let path = directory.path + "/tdx.orc"
        try Data(writer.archive()).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: DaemonError.self) {
            try validate(#"{"name":"a","bundle":"\#(path)","component":"rofl.vm-app"}"#)
        }
        #expect(error.code == .unsupportedComponent && error.httpStatus == 400 && error.message.contains("TDX"))
        _ = try validate(#"{"name":"a","bundle":"\#(Self.fixtures)/ronl-elf-sgx.orc"}"#)
    }

    @Test("bundle specs persist and come back with their pin")
    func persisted() throws {
        let directory = TemporaryDirectory()
        let store = try StateStore(stateDirectory: directory.path + "/state", logger: Logger(label: "test"))
        let spec = try validate(#"{"name":"rt","bundle":"\#(Self.fixtures)/legacy.orc"}"#)
        try store.save(StateRecord(spec: spec, desiredRunning: true))
        let restored = store.loadAll()
        #expect(restored.records.map(\.spec) == [spec])
        let legacyHash = try hash("legacy.orc")
        #expect(restored.records.first?.spec.bundle?.manifestHash == legacyHash)
    }

    @Test("the config declares runtimes by bundle and sets the archive limits")
    func config() throws {
        let config = try ConfigLoader.parse(yaml: """
        bundles: {max_entries: 10, max_file_size: 2048, max_total_size: 4096, max_compression_ratio: 50}
        runtimes:
          - name: rofl
            bundle: \(Self.fixtures)/rofl-detached.orc
            component: rofl.oracle
        """)
        #expect(config.bundleLimits.maxEntries == 10 && config.bundleLimits.maxFileSize == 2048)
        #expect(config.bundleLimits.maxTotalSize == 4096 && config.bundleLimits.maxCompressionRatio == 50)
        #expect(config.runtimes.first?.bundle?.component == "rofl.oracle")
        #expect(config.runtimes.first?.network == true)
        // The limits apply to declared bundles too.
        #expect(throws: DaemonError.self) {
            try ConfigLoader.parse(yaml: """
            bundles: {max_entries: 1}
            runtimes: [{name: rofl, bundle: \(Self.fixtures)/rofl-detached.orc, component: rofl.oracle}]
            """)
        }
    }

    @Test("sandboxctl provision --bundle --component", .enabled(if: SandboxctlTests.binary != nil))
    func provisionByBundle() async throws {
        let daemon = try await TestDaemon()
        let result = await SandboxctlTests.run([
            "--socket", daemon.socketPath, "--json", "provision", "--name", "oracle",
            "--bundle", "\(Self.fixtures)/rofl-detached.orc", "--component", "rofl.oracle",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let status = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(status?["bundle"] as? String == "\(Self.fixtures)/rofl-detached.orc")
        #expect(status?["component"] as? String == "rofl.oracle")
        #expect(status?["id"] as? String == "8000000000000000000000000000000000000000000000000000000000f1c005")
        #expect((status?["manifest_hash"] as? String)?.count == 64)
        try await daemon.stop()
    }

    @Test("sandboxctl bundle inspect prints manifest, components, verdict and hash", .enabled(if: SandboxctlTests.binary != nil))
    func inspect() async throws {
        var result = await SandboxctlTests.run(["bundle", "inspect", "\(Self.fixtures)/ronl-rofl.orc"])
        #expect(result.status == 0, "\(result.stderr)")
        let ronlROFLHash = try hash("ronl-rofl.orc"), invalidHash = try hash("invalid-digest.orc")
        #expect(result.stdout.contains(ronlROFLHash) && result.stdout.contains("rofl.my-rofl"))
        #expect(result.stdout.contains("verdict:        accept"))
        result = await SandboxctlTests.run(["bundle", "inspect", "--json", "\(Self.fixtures)/invalid-digest.orc"])
        #expect(result.status == 1)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(object?["verdict"] as? String == "reject")
        #expect(object?["manifest_hash"] as? String == invalidHash)
        #expect((object?["error"] as? [String: Any])?["message"] as? String == "invalid digest: 'runtime.bin'")
        #expect((object?["components"] as? [[String: Any]])?.first?["id"] as? String == "ronl")
        #expect(object?["manifest"] is [String: Any])
    }
}
