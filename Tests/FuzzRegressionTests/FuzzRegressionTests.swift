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
    func replay(_ harness: Harness) async throws {
        let files = Self.inputs(harness)
        let inputs = try files.map { try [UInt8](Data(contentsOf: URL(fileURLWithPath: $0))) }
        // Harnesses block their caller until async work finishes (as libFuzzer's thread does): run them on a
        // thread of their own, never on the cooperative pool whose few threads that work needs.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread {
                for bytes in inputs { harness.run(bytes) }
                continuation.resume()
            }.start()
        }
        print("fuzz regressions: \(harness.rawValue): \(files.count) inputs")
    }
}
