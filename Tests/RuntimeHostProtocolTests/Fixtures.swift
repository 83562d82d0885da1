import Foundation

/// The RHP test vectors in `Tests/Fixtures/rhp-vectors`, found relative to this file.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures/rhp-vectors")

    /// The `vectors` array of one vector file.
    static func vectors(_ file: String) -> [[String: Any]] {
        let url = directory.appendingPathComponent(file)
        guard let data = try? Data(contentsOf: url),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let vectors = object["vectors"] as? [[String: Any]]
        else { fatalError("cannot read test vectors at \(url.path)") }
        return vectors
    }

    // Parsed once and never mutated afterwards, so sharing them across test tasks is safe.
    nonisolated(unsafe) static let positive = vectors("positive.json")
    nonisolated(unsafe) static let negative = vectors("negative.json")
    nonisolated(unsafe) static let framing = vectors("framing.json")

    static func name(_ vector: [String: Any]) -> String { vector["name"] as? String ?? "?" }
}

/// Hex without separators, both ways.
enum Hex {
    static func decode(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for digit in text.utf8 {
            let value: UInt8
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = digit - UInt8(ascii: "A") + 10
            default: fatalError("not hex: \(text)")
            }
            if let pending = high {
                bytes.append(pending << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return bytes
    }

    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
