/// Why and where decoding failed: a stable code, a message naming what was wrong, and a byte offset.
///
/// Every error thrown by ``CBORDecoder/decode(_:from:)`` has this type. An error thrown by a type's own
/// `init(from:)` is wrapped with code ``Code/invalidValue`` and kept in ``underlyingError``.
public struct CBORDecodingError: Error, CustomStringConvertible {
    /// Stable classification of decoding failures; raw values never change.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The input ends inside an item (or is empty).
        case truncated
        /// Bytes follow the single top-level item.
        case trailingBytes
        /// An indefinite-length string, array or map.
        case indefiniteLength
        /// A tag (major type 6), including the self-describe prefix d9d9f7.
        case tagNotAllowed
        /// Additional information 28–30, or 31 where no indefinite form exists.
        case reservedAdditionalInfo
        /// A "break" byte (ff) outside an indefinite-length item.
        case unexpectedBreak
        /// A head, or a float, longer than its value needs.
        case nonCanonical
        /// Map keys out of length-first canonical order.
        case unsortedMapKeys
        /// The same map key twice.
        case duplicateMapKey
        /// A text string that is not valid UTF-8.
        case invalidUTF8
        /// Arrays and maps nested deeper than ``CBORDecoder/Limits/maxNesting``.
        case nestingTooDeep
        /// An array or map with more entries than the limits allow.
        case tooManyElements
        /// A simple value other than false, true, null and undefined.
        case unsupportedSimpleValue
        /// A map key that is not a text string where text keys are required.
        case nonTextMapKey
        /// The item has the wrong type for the value being decoded.
        case typeMismatch
        /// An integer (or float) that does not fit the target type exactly.
        case outOfRange
        /// A required key is missing from a map.
        case missingKey
        /// null or undefined where a value is required.
        case unexpectedNull
        /// An unkeyed container was read past its end.
        case endOfContainer
        /// A type's own `init(from:)` rejected the value.
        case invalidValue
    }

    /// What went wrong, as a stable code.
    public var code: Code
    /// Human-readable detail.
    public var message: String
    /// Offset into the input of the byte where the problem was found.
    public var offset: Int
    /// Keys (and `[index]` for array elements) leading to the failing value.
    public var codingPath: [String]
    /// The error a type's `init(from:)` threw, for ``Code/invalidValue``.
    public var underlyingError: (any Error)?

    public init(
        code: Code, message: String, offset: Int, codingPath: [String] = [], underlyingError: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.offset = offset
        self.codingPath = codingPath
        self.underlyingError = underlyingError
    }

    public var description: String {
        let path = codingPath.isEmpty ? "" : " (at \(renderedPath))"
        return "CBOR decoding error [\(code.rawValue)] at byte \(offset)\(path): \(message)"
    }

    /// The path as `body.Error.code` or `list[2].name`.
    private var renderedPath: String {
        var text = ""
        for component in codingPath {
            if !text.isEmpty && !component.hasPrefix("[") {
                text += "."
            }
            text += component
        }
        return text
    }

    /// Prepends a key (or `[index]`) while the error passes out through an enclosing container.
    func prefixed(by component: String) -> CBORDecodingError {
        var copy = self
        copy.codingPath.insert(component, at: 0)
        return copy
    }
}
