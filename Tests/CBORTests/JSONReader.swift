/// A minimal JSON reader for the vector files that keeps number spelling, so `1.0` stays a float and
/// `18446744073709551615` stays an exact integer. Objects keep their key order.
indirect enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.map(\.0) == b.map(\.0) && a.map(\.1) == b.map(\.1)
        default: false
        }
    }

    subscript(key: String) -> JSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var array: [JSON] {
        if case .array(let value) = self { return value }
        return []
    }

    static func parse(_ bytes: [UInt8]) throws -> JSON {
        var parser = Parser(bytes: bytes)
        let value = try parser.value()
        parser.skipSpace()
        guard parser.index == bytes.count else { throw Parser.Failure(index: parser.index) }
        return value
    }

    private struct Parser {
        struct Failure: Error { let index: Int }

        let bytes: [UInt8]
        var index = 0

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x0a, 0x0d, 0x09].contains(bytes[index]) { index += 1 }
        }

        mutating func expect(_ literal: String) throws {
            for byte in literal.utf8 {
                guard index < bytes.count, bytes[index] == byte else { throw Failure(index: index) }
                index += 1
            }
        }

        mutating func value() throws -> JSON {
            skipSpace()
            guard index < bytes.count else { throw Failure(index: index) }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(String, JSON)] = []
                skipSpace()
                if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                while true {
                    skipSpace()
                    let key = try string()
                    skipSpace()
                    try expect(":")
                    members.append((key, try value()))
                    skipSpace()
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    try expect("}")
                    return .object(members)
                }
            case UInt8(ascii: "["):
                index += 1
                var elements: [JSON] = []
                skipSpace()
                if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
                while true {
                    elements.append(try value())
                    skipSpace()
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    try expect("]")
                    return .array(elements)
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                try expect("true"); return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false"); return .bool(false)
            case UInt8(ascii: "n"):
                try expect("null"); return .null
            default:
                let start = index
                while index < bytes.count, "+-0123456789.eE".utf8.contains(bytes[index]) { index += 1 }
                guard index > start else { throw Failure(index: index) }
                return .number(String(decoding: bytes[start..<index], as: UTF8.self))
            }
        }

        mutating func string() throws -> String {
            try expect("\"")
            var scalars = String.UnicodeScalarView()
            var pendingHigh: UInt32?
            while true {
                guard index < bytes.count else { throw Failure(index: index) }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") { index += 1; return String(scalars) }
                if byte == UInt8(ascii: "\\") {
                    index += 1
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "b"): scalars.append("\u{8}")
                    case UInt8(ascii: "f"): scalars.append("\u{c}")
                    case UInt8(ascii: "u"):
                        let code = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)!
                        index += 4
                        if (0xd800..<0xdc00).contains(code) {
                            pendingHigh = code
                        } else if let high = pendingHigh, (0xdc00..<0xe000).contains(code) {
                            scalars.append(Unicode.Scalar(0x10000 + (high - 0xd800) << 10 + (code - 0xdc00))!)
                            pendingHigh = nil
                        } else {
                            scalars.append(Unicode.Scalar(code)!)
                        }
                    default: scalars.append(Unicode.Scalar(escape))
                    }
                    continue
                }
                // Copy one UTF-8 sequence.
                var length = 1
                if byte >= 0xf0 { length = 4 } else if byte >= 0xe0 { length = 3 } else if byte >= 0xc0 { length = 2 }
                scalars.append(contentsOf: String(decoding: bytes[index..<index + length], as: UTF8.self).unicodeScalars)
                index += length
            }
        }
    }
}
