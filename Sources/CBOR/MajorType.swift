/// The major types and fixed initial bytes of the CBOR profile (RFC 8949 §3.1).
enum Major {
    static let unsigned: UInt8 = 0
    static let negative: UInt8 = 1
    static let bytes: UInt8 = 2
    static let text: UInt8 = 3
    static let array: UInt8 = 4
    static let map: UInt8 = 5
    static let tag: UInt8 = 6
    static let simple: UInt8 = 7
}

/// Initial bytes of the simple values and floats the profile knows.
enum InitialByte {
    static let `false`: UInt8 = 0xf4
    static let `true`: UInt8 = 0xf5
    static let null: UInt8 = 0xf6
    static let undefined: UInt8 = 0xf7
    static let half: UInt8 = 0xf9
    static let single: UInt8 = 0xfa
    static let double: UInt8 = 0xfb
    static let emptyMap: UInt8 = 0xa0
}

/// Describes a major type for error messages ("text string", "map", …).
func majorName(_ major: UInt8) -> String {
    switch major {
    case Major.unsigned: "unsigned integer"
    case Major.negative: "negative integer"
    case Major.bytes: "byte string"
    case Major.text: "text string"
    case Major.array: "array"
    case Major.map: "map"
    case Major.tag: "tag"
    default: "simple value or float"
    }
}

/// Describes the item that starts with `initialByte` (distinguishes null, bools and floats).
func itemName(_ initialByte: UInt8) -> String {
    switch initialByte {
    case InitialByte.false, InitialByte.true: "boolean"
    case InitialByte.null: "null"
    case InitialByte.undefined: "undefined"
    case InitialByte.half, InitialByte.single, InitialByte.double: "float"
    default: majorName(initialByte >> 5)
    }
}
