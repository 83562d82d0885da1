import CBOR
import Foundation
import Testing

/// The RHP test vectors in `Tests/Fixtures/rhp-vectors`, found from this file's path.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures/rhp-vectors")

    static func load(_ name: String) throws -> JSON {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try JSON.parse(Array(data))
    }

    struct Vector: CustomTestStringConvertible, Sendable {
        let name: String
        let category: String
        let cborHex: String
        let decoded: JSON?

        var testDescription: String { name }
    }

    static func vectors(_ file: String) -> [Vector] {
        guard let root = try? load(file) else { return [] }
        return root["vectors"]!.array.map { vector in
            Vector(
                name: vector["name"]!.string!,
                category: vector["category"]?.string ?? "",
                cborHex: vector["cbor_hex"]?.string ?? "",
                decoded: vector["decoded"])
        }
    }

    static let positive = vectors("positive.json")
    static let negative = vectors("negative.json")
}

func bytes(hex: String) -> [UInt8] {
    var result: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        result.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return result
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

/// The `CBORValue` a vector's JSON view stands for (`{"$bytes": hex}` is a byte string).
func cborValue(_ json: JSON) -> CBORValue {
    switch json {
    case .null: return .null
    case .bool(let value): return .bool(value)
    case .string(let value): return .text(value)
    case .number(let text):
        if text.contains(where: { ".eE".contains($0) }) { return .float(Double(text)!) }
        if text.hasPrefix("-") { return .integer(Int64(text)!) }
        return .unsigned(UInt64(text)!)
    case .array(let elements): return .array(elements.map(cborValue))
    case .object(let members):
        if members.count == 1, members[0].0 == "$bytes", case .string(let hexBytes) = members[0].1 {
            return .bytes(bytes(hex: hexBytes))
        }
        return .map(Dictionary(uniqueKeysWithValues: members.map { ($0.0, cborValue($0.1)) }))
    }
}
