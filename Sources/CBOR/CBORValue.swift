/// A free-form CBOR item of the profile, e.g. Oasis's `local_config` (`map[string]interface{}`).
///
/// Each value has exactly one representation: integers are split by sign as on the wire, floats
/// compare by bit pattern (so `-0.0 != 0.0` and NaN equals NaN, matching their distinct encodings),
/// and maps have text keys only. Maps are unordered; the encoder writes their keys in canonical order,
/// which is also the only order the decoder accepts, so decoding and re-encoding is byte-identical.
public enum CBORValue: Sendable {
    case null
    case undefined
    case bool(Bool)
    /// A non-negative integer (major type 0), 0 … 2^64-1.
    case unsigned(UInt64)
    /// The negative integer -1 - n (major type 1): `.negative(0)` is -1, `.negative(.max)` is -2^64.
    case negative(UInt64)
    case float(Double)
    case text(String)
    case bytes([UInt8])
    case array([CBORValue])
    case map([String: CBORValue])

    /// The integer `value`, as `.unsigned` or `.negative`.
    public static func integer<T: BinaryInteger>(_ value: T) -> CBORValue {
        value >= 0 ? .unsigned(UInt64(value)) : .negative(UInt64(~value))
    }

    /// The integer value when it fits in `Int64`.
    public var int64Value: Int64? {
        switch self {
        case .unsigned(let value): Int64(exactly: value)
        case .negative(let value): value <= UInt64(Int64.max) ? -1 - Int64(value) : nil
        default: nil
        }
    }
}

extension CBORValue: Hashable {
    public static func == (lhs: CBORValue, rhs: CBORValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null), (.undefined, .undefined): true
        case (.bool(let a), .bool(let b)): a == b
        case (.unsigned(let a), .unsigned(let b)): a == b
        case (.negative(let a), .negative(let b)): a == b
        case (.float(let a), .float(let b)): a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN)
        case (.text(let a), .text(let b)): a == b
        case (.bytes(let a), .bytes(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.map(let a), .map(let b)): a == b
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .undefined: hasher.combine(1)
        case .bool(let value): hasher.combine(2); hasher.combine(value)
        case .unsigned(let value): hasher.combine(3); hasher.combine(value)
        case .negative(let value): hasher.combine(4); hasher.combine(value)
        case .float(let value): hasher.combine(5); hasher.combine(value.isNaN ? Double.nan.bitPattern : value.bitPattern)
        case .text(let value): hasher.combine(6); hasher.combine(value)
        case .bytes(let value): hasher.combine(7); hasher.combine(value)
        case .array(let value): hasher.combine(8); hasher.combine(value)
        case .map(let value): hasher.combine(9); hasher.combine(value)
        }
    }
}

extension CBORValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .float(value) }
    public init(stringLiteral value: String) { self = .text(value) }
    public init(arrayLiteral elements: CBORValue...) { self = .array(elements) }

    public init(dictionaryLiteral elements: (String, CBORValue)...) {
        self = .map(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
