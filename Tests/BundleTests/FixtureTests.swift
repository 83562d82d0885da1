import Bundle
import Foundation
import Testing

/// Every bundle in `Tests/Fixtures/orc-fixtures` (written by upstream's encoding rules) gets upstream's
/// verdict, manifest hash, runtime id and component listing.
struct FixtureTests {
    struct Fixture: Decodable, CustomTestStringConvertible {
        struct Listed: Decodable, Equatable {
            var id: String
            var executable: String
            var version: String
            var tee: String?
            var disabled: Bool?
        }

        var file: String
        var verdict: String
        var manifest_hash: String?
        var runtime_id: String?
        var name: String?
        var components: [Listed]?
        var upstream_error: String?

        var testDescription: String { file }
    }

    static let fixtures: [Fixture] = {
        struct Index: Decodable { var fixtures: [Fixture] }
        let data = try! Data(contentsOf: fixturesDirectory.appendingPathComponent("index.json"))
        return try! JSONDecoder().decode(Index.self, from: data).fixtures
    }()

    @Test func indexIsComplete() {
        #expect(Self.fixtures.count == 22)
    }

    @Test(arguments: fixtures)
    func fixture(_ fixture: Fixture) throws {
        let path = fixturesDirectory.appendingPathComponent(fixture.file).path
        let bundle: RuntimeBundle
        do {
            bundle = try RuntimeBundle.open(path: path)
        } catch {
            // Only an unparsable manifest may fail before a verdict; it has no hash upstream either.
            #expect(fixture.verdict == "reject")
            #expect(fixture.manifest_hash == nil, "opening failed: \(error)")
            #expect(error.code == .invalidManifest)
            return
        }
        #expect(bundle.manifestHashHex == fixture.manifest_hash)
        #expect(bundle.manifest.idHex == fixture.runtime_id)
        #expect(bundle.manifest.name == (fixture.name ?? ""))
        #expect(Self.listing(bundle.manifest) == fixture.components)
        let verdict = bundle.verdict
        #expect((verdict == nil ? "accept" : "reject") == fixture.verdict, "\(verdict?.description ?? "accepted")")
        if let verdict, let upstream = fixture.upstream_error {
            // Same rule, in upstream's words (modulo the "runtime/bundle: " prefix and detail we add).
            let core = upstream.replacingOccurrences(of: "runtime/bundle: ", with: "")
                .replacingOccurrences(of: "malformed manifest: ", with: "")
            #expect(verdict.message.contains(core.prefix(while: { $0 != "'" && $0 != "(" })), "\(verdict.message) vs \(upstream)")
        }
    }

    /// The fixture index's component listing: the legacy top-level RONL first, then the listed ones.
    static func listing(_ manifest: BundleManifest) -> [Fixture.Listed] {
        var all: [Component] = []
        if let legacy = manifest.legacyRONL { all.append(legacy) }
        all += manifest.components
        return all.map { component in
            let tee: String? = switch (component.sgx != nil, component.tdx != nil) {
            case (true, true): "sgx+tdx"
            case (true, false): "sgx"
            case (false, true): "tdx"
            case (false, false): nil
            }
            return Fixture.Listed(
                id: component.id.text, executable: component.elfExecutable ?? "", version: component.version.description,
                tee: tee, disabled: component.disabled ? true : nil
            )
        }
    }
}
