/// A text string decoded only up to ``limit`` UTF-8 bytes: for untrusted peers whose strings are
/// shown but never needed whole (a 50 MB error message costs 4 KiB, not 50 MB).
///
/// The whole string is still validated (UTF-8, as every text); only the kept prefix is built. The
/// prefix ends on a scalar boundary. Decoding only: it cannot be encoded.
public struct CBORTextPrefix: Sendable, Hashable, Decodable {
    /// Most UTF-8 bytes kept: 4 KiB.
    public static let limit = 4096

    /// The first ``limit`` bytes at most.
    public var prefix: String
    /// The encoded string's full length in bytes.
    public var totalBytes: Int

    public var isTruncated: Bool { totalBytes > prefix.utf8.count }

    public init(from decoder: any Decoder) throws {
        // Only reached through other decoders; the CBOR decoder reads it directly.
        let whole = try decoder.singleValueContainer().decode(String.self)
        self = Self.make(Array(whole.utf8)[...])
    }

    static func make(_ bytes: some Collection<UInt8>) -> CBORTextPrefix {
        let total = bytes.count
        guard total > limit else { return CBORTextPrefix(prefix: String(decoding: bytes, as: UTF8.self), totalBytes: total) }
        // The byte at the cut plus the ones before: back off while the cut falls inside a scalar.
        let head = Array(bytes.prefix(limit + 1))
        var end = limit
        while end > 0, head[end] & 0xC0 == 0x80 { end -= 1 }
        return CBORTextPrefix(prefix: String(decoding: head[..<end], as: UTF8.self), totalBytes: total)
    }

    /// The empty string.
    public static let empty = CBORTextPrefix(prefix: "", totalBytes: 0)

    private init(prefix: String, totalBytes: Int) {
        self.prefix = prefix
        self.totalBytes = totalBytes
    }
}

extension CBORTextPrefix: DirectDecodable {
    static func decodeDirectly(from state: DecoderState, at offset: Int) throws(CBORDecodingError) -> CBORTextPrefix {
        make(try state.text(at: offset))
    }
}
