import Foundation
import FuzzHarnesses
import Testing

/// Every input kept under `Tests/Fixtures/fuzz/<harness>/` (crashers found by `make fuzz`, and seeds
/// worth keeping) goes through its harness again: a fixed crash stays fixed.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/fuzz").path

    static func inputs(_ harness: Harness) -> [String] {
        let directory = root + "/" + harness.rawValue
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { !$0.hasPrefix(".") && $0 != "README.md" }.sorted().map { directory + "/" + $0 }
    }

    @Test("kept inputs replay without a crash", arguments: Harness.allCases)
    func replay(_ harness: Harness) throws {
        let files = Self.inputs(harness)
        for file in files {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
            harness.run(bytes)
        }
        print("fuzz regressions: \(harness.rawValue): \(files.count) inputs")
    }
}
