#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// A type with a Go zero value: what ``OmitEmpty`` leaves out when encoding and yields for a missing key.
///
/// Go's `omitempty` drops false, 0, "", nil or empty slices/maps, nil pointers, and structs all of whose
/// fields are `omitempty` and empty. Conform your own structs by providing ``emptyValue``; the default
/// ``isEmptyValue`` of an `Encodable` type is "encodes to an empty map" with ``CBOREncoder``, which is
/// exactly Go's rule for structs (override it when a cheaper test exists).
public protocol EmptyRepresentable {
    /// The zero value (decoded when the key is missing).
    static var emptyValue: Self { get }
    /// Whether the encoder leaves the key out.
    var isEmptyValue: Bool { get }
}

extension EmptyRepresentable where Self: Encodable {
    public var isEmptyValue: Bool {
        (try? CBOREncoder().encode(self)) == [InitialByte.emptyMap]
    }
}

extension Bool: EmptyRepresentable {
    public static var emptyValue: Bool { false }
    public var isEmptyValue: Bool { !self }
}

extension String: EmptyRepresentable {
    public static var emptyValue: String { "" }
    public var isEmptyValue: Bool { isEmpty }
}

extension Double: EmptyRepresentable {
    public static var emptyValue: Double { 0 }
    /// Zero of either sign, as Go's `v.Float() == 0`.
    public var isEmptyValue: Bool { self == 0 }
}

extension Float: EmptyRepresentable {
    public static var emptyValue: Float { 0 }
    public var isEmptyValue: Bool { self == 0 }
}

extension Int: EmptyRepresentable {}
extension Int8: EmptyRepresentable {}
extension Int16: EmptyRepresentable {}
extension Int32: EmptyRepresentable {}
extension Int64: EmptyRepresentable {}
extension UInt: EmptyRepresentable {}
extension UInt8: EmptyRepresentable {}
extension UInt16: EmptyRepresentable {}
extension UInt32: EmptyRepresentable {}
extension UInt64: EmptyRepresentable {}

extension EmptyRepresentable where Self: FixedWidthInteger & Encodable {
    public static var emptyValue: Self { 0 }
    public var isEmptyValue: Bool { self == 0 }
}

extension Array: EmptyRepresentable {
    public static var emptyValue: Array { [] }
    public var isEmptyValue: Bool { isEmpty }
}

extension Dictionary: EmptyRepresentable {
    public static var emptyValue: Dictionary { [:] }
    public var isEmptyValue: Bool { isEmpty }
}

extension Set: EmptyRepresentable {
    public static var emptyValue: Set { [] }
    public var isEmptyValue: Bool { isEmpty }
}

extension Data: EmptyRepresentable {
    public static var emptyValue: Data { Data() }
    public var isEmptyValue: Bool { isEmpty }
}

/// `nil` is empty, as a nil pointer in Go; a present value is not, even if it is itself empty.
extension Optional: EmptyRepresentable {
    public static var emptyValue: Optional { nil }
    public var isEmptyValue: Bool { self == nil }
}

/// Empty are null, undefined, and empty maps, arrays, byte and text strings (Go's nil interface and
/// zero-length map/slice/string); `false` and `0` are not, as with Go's `interface{}`.
extension CBORValue: EmptyRepresentable {
    public static var emptyValue: CBORValue { .null }

    public var isEmptyValue: Bool {
        switch self {
        case .null, .undefined: true
        case .map(let entries): entries.isEmpty
        case .array(let elements): elements.isEmpty
        case .bytes(let bytes): bytes.isEmpty
        case .text(let text): text.isEmpty
        default: false
        }
    }
}
