#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A runtime identifier: 32 bytes, sent as a CBOR byte string.
///
/// Bytes 0–7 are a big-endian flags word (bit 63: test runtime, bit 62: key-manager runtime; every
/// other flag bit must be zero), bytes 8–31 the identifier. Shown as 64 lowercase hex characters.
public struct Namespace: Sendable, Hashable, Codable, CustomStringConvertible {
    public static let size = 32
    private static let testFlag: UInt8 = 0x80
    private static let keyManagerFlag: UInt8 = 0x40

    public let bytes: [UInt8]

    /// All zeros: what a missing `runtime_id` decodes to.
    public static let zero = Namespace(unchecked: [UInt8](repeating: 0, count: size))

    private init(unchecked bytes: [UInt8]) { self.bytes = bytes }

    /// Validates length and reserved flag bits.
    public init(bytes: some Collection<UInt8>) throws(RHPError) {
        let bytes = Array(bytes)
        guard bytes.count == Self.size else {
            throw RHPError(.invalidArgument, "malformed namespace: \(bytes.count) bytes, want \(Self.size)")
        }
        guard bytes[0] & ~(Self.testFlag | Self.keyManagerFlag) == 0, bytes[1..<8].allSatisfy({ $0 == 0 }) else {
            throw RHPError(.invalidArgument, "malformed namespace: reserved flag bits set")
        }
        self.bytes = bytes
    }

    /// Parses 64 hex characters.
    public init(hex: String) throws(RHPError) {
        let digits = Array(hex.utf8)
        guard digits.count == 2 * Self.size else {
            throw RHPError(.invalidArgument, "malformed namespace: \(digits.count) hex digits, want \(2 * Self.size)")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.size)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else {
                throw RHPError(.invalidArgument, "malformed namespace: not hexadecimal")
            }
            bytes.append(high << 4 | low)
        }
        try self.init(bytes: bytes)
    }

    public var isTest: Bool { bytes[0] & Self.testFlag != 0 }
    public var isKeyManager: Bool { bytes[0] & Self.keyManagerFlag != 0 }

    public var description: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(2 * bytes.count)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    public init(from decoder: any Decoder) throws {
        let data = try decoder.singleValueContainer().decode(Data.self)
        do {
            try self.init(bytes: data)
        } catch {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: error.message)
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Data(bytes))
    }
}
