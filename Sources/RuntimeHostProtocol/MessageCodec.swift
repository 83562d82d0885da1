import CBOR
import NIOCore

/// The hot path for the envelope: written and parsed by hand, payloads through the CBOR codec.
///
/// A canonical message always has the same shape: `a3`, `"id"` + uint, `"body"` + a one-entry map
/// `{name: payload}`, `"message_type"` + uint8. The encoder writes exactly that. The parser accepts
/// only that shape with shortest heads, validates the payload as exactly one item of the strict
/// profile (nesting counted from the envelope), and returns nil for anything else so the caller
/// falls back to the full Codable decoder, which then reports the precise error. Both paths are
/// checked against each other on every test vector.
enum MessageCodec {
    private static let idKey: [UInt8] = [0x62] + Array("id".utf8)
    private static let bodyKey: [UInt8] = [0x64] + Array("body".utf8)
    private static let typeKey: [UInt8] = [0x6c] + Array("message_type".utf8)
    /// Payload nesting starts two levels down (envelope, body).
    private static let payloadLimits: CBORDecoder.Limits = {
        var limits = CBORDecoder.Limits()
        limits.maxNesting -= 2
        return limits
    }()
    /// Variant names as UTF-8, bucketed by length, for lookups without allocating.
    private static let kindsByLength: [[([UInt8], BodyKind)]] = {
        let longest = BodyKind.allCases.map(\.rawValue.utf8.count).max() ?? 0
        var buckets = [[([UInt8], BodyKind)]](repeating: [], count: longest + 1)
        for kind in BodyKind.allCases { buckets[kind.rawValue.utf8.count].append((Array(kind.rawValue.utf8), kind)) }
        return buckets
    }()
    private static let unitPayload: [UInt8] = [0xa0]

    private static func kind(named name: UnsafeRawBufferPointer.SubSequence) -> BodyKind? {
        guard name.count < kindsByLength.count else { return nil }
        for (bytes, kind) in kindsByLength[name.count] where bytes.elementsEqual(name) { return kind }
        return nil
    }

    // MARK: Encoding

    /// The canonical encoding of `body`'s payload.
    static func payloadBytes(_ body: Body) throws -> [UInt8] {
        switch body {
        case .empty, .runtimePingRequest, .runtimeShutdownRequest, .runtimeAbortRequest, .runtimeAbortResponse:
            return unitPayload
        case .raw(_, let raw):
            try CBORDecoder(limits: payloadLimits).validate(raw.bytes)
            return raw.bytes
        case .error(let payload): return try CBOREncoder().encode(payload)
        case .runtimeInfoRequest(let payload): return try CBOREncoder().encode(payload)
        case .runtimeInfoResponse(let payload): return try CBOREncoder().encode(payload)
        }
    }

    /// Appends the canonical encoding of `message` to `buffer`.
    static func write(_ message: Message, payload: [UInt8], into buffer: inout ByteBuffer) {
        let name = message.body.kind.rawValue
        buffer.writeInteger(UInt8(0xa3))
        buffer.writeBytes(idKey)
        writeHead(major: 0, message.id, into: &buffer)
        buffer.writeBytes(bodyKey)
        buffer.writeInteger(UInt8(0xa1))
        writeHead(major: 3, UInt64(name.utf8.count), into: &buffer)
        buffer.writeString(name)
        buffer.writeBytes(payload)
        buffer.writeBytes(typeKey)
        writeHead(major: 0, UInt64(message.messageType.rawValue), into: &buffer)
    }

    static func encodedSize(_ message: Message, payload: [UInt8]) -> Int {
        let nameLength = message.body.kind.rawValue.utf8.count
        return 1 + idKey.count + headSize(message.id) + bodyKey.count + 1 + headSize(UInt64(nameLength)) + nameLength
            + payload.count + typeKey.count + headSize(UInt64(message.messageType.rawValue))
    }

    private static func writeHead(major: UInt8, _ value: UInt64, into buffer: inout ByteBuffer) {
        let major = major << 5
        switch value {
        case 0..<24:
            buffer.writeInteger(major | UInt8(value))
        case 24..<0x100:
            buffer.writeInteger(major | 24)
            buffer.writeInteger(UInt8(value))
        case 0x100..<0x1_0000:
            buffer.writeInteger(major | 25)
            buffer.writeInteger(UInt16(value), endianness: .big)
        case 0x1_0000..<0x1_0000_0000:
            buffer.writeInteger(major | 26)
            buffer.writeInteger(UInt32(value), endianness: .big)
        default:
            buffer.writeInteger(major | 27)
            buffer.writeInteger(value, endianness: .big)
        }
    }

    private static func headSize(_ value: UInt64) -> Int {
        switch value {
        case 0..<24: 1
        case 24..<0x100: 2
        case 0x100..<0x1_0000: 3
        case 0x1_0000..<0x1_0000_0000: 5
        default: 9
        }
    }

    // MARK: Parsing

    /// Parses a canonical message, or returns nil when `bytes` is not in the canonical shape.
    /// Throws only for a payload that cannot be valid (the full decoder would reject it too).
    ///
    /// `policy` names the kinds whose payloads are validated but not built: dropped from requests (the
    /// body becomes `.raw(kind, {})`, nothing is copied) or kept as their bytes. The host uses it for
    /// bodies it never reads.
    static func parse(_ bytes: UnsafeRawBufferPointer, policy: BodyPolicy = .buildAll) throws -> Message? {
        var reader = Reader(bytes: bytes)
        guard reader.take(0xa3), reader.take(idKey), let id = reader.canonicalUInt() else { return nil }
        guard reader.take(bodyKey), reader.take(0xa1), let nameLength = reader.canonicalTextLength(),
            let name = reader.take(count: nameLength), let kind = kind(named: name)
        else { return nil }
        let payloadStart = reader.offset
        // The envelope ends with "message_type" and a one- or two-byte uint8.
        let typeValue: UInt8
        let payloadEnd: Int
        let count = bytes.count
        if count >= payloadStart + typeKey.count + 1, bytes[count - 1] < 24,
            reader.matches(typeKey, at: count - 1 - typeKey.count)
        {
            typeValue = bytes[count - 1]
            payloadEnd = count - 1 - typeKey.count
        } else if count >= payloadStart + typeKey.count + 2, bytes[count - 2] == 0x18, bytes[count - 1] >= 24,
            reader.matches(typeKey, at: count - 2 - typeKey.count)
        {
            typeValue = bytes[count - 1]
            payloadEnd = count - 2 - typeKey.count
        } else {
            return nil
        }
        guard payloadEnd > payloadStart else { return nil }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[payloadStart..<payloadEnd])
        let body: Body
        let dropped = typeValue == MessageType.request.rawValue && policy.droppedRequests.contains(kind)
        if dropped || policy.keptAsBytes.contains(kind), !(payload.count == 1 && payload[0] == 0xa0) {
            guard payload[0] >> 5 == 5 else { return nil }
            try CBORDecoder(limits: payloadLimits).validate(payload)
            let kept = CBORRawItem(bytes: dropped ? unitPayload : Array(payload))
            return Message(id: id, messageType: MessageType(rawValue: typeValue), body: .raw(kind, kept))
        }
        switch kind {
        case .empty, .runtimePingRequest, .runtimeShutdownRequest, .runtimeAbortRequest, .runtimeAbortResponse:
            guard payload.count == 1, payload[0] == 0xa0 else { return nil }
            body = unit(kind)
        case .error:
            let decoder = CBORDecoder(limits: payloadLimits)
            if !policy.boundsErrorText {
                body = .error(try decoder.decode(ErrorPayload.self, from: payload))
            } else {
                // A host reading an untrusted runtime builds at most 4 KiB of its error text.
                body = .error(try decoder.decode(BoundedErrorPayload.self, from: payload).payload)
            }
        case .runtimeInfoRequest:
            body = .runtimeInfoRequest(try CBORDecoder(limits: payloadLimits).decode(RuntimeInfoRequest.self, from: payload))
        case .runtimeInfoResponse:
            body = .runtimeInfoResponse(try CBORDecoder(limits: payloadLimits).decode(RuntimeInfoResponse.self, from: payload))
        default:
            guard payload[0] >> 5 == 5 else { return nil }
            try CBORDecoder(limits: payloadLimits).validate(payload)
            body = .raw(kind, CBORRawItem(bytes: Array(payload)))
        }
        return Message(id: id, messageType: MessageType(rawValue: typeValue), body: body)
    }

    private static func unit(_ kind: BodyKind) -> Body {
        switch kind {
        case .runtimePingRequest: .runtimePingRequest
        case .runtimeShutdownRequest: .runtimeShutdownRequest
        case .runtimeAbortRequest: .runtimeAbortRequest
        case .runtimeAbortResponse: .runtimeAbortResponse
        default: .empty
        }
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        mutating func take(_ byte: UInt8) -> Bool {
            guard offset < bytes.count, bytes[offset] == byte else { return false }
            offset += 1
            return true
        }

        mutating func take(_ expected: [UInt8]) -> Bool {
            guard matches(expected, at: offset) else { return false }
            offset += expected.count
            return true
        }

        mutating func take(count: Int) -> UnsafeRawBufferPointer.SubSequence? {
            guard count <= bytes.count - offset else { return nil }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }

        func matches(_ expected: [UInt8], at position: Int) -> Bool {
            guard position >= 0, expected.count <= bytes.count - position else { return false }
            for index in expected.indices where bytes[position + index] != expected[index] { return false }
            return true
        }

        /// A major-type-0 head in its shortest form.
        mutating func canonicalUInt() -> UInt64? {
            argument(major: 0)
        }

        mutating func canonicalTextLength() -> Int? {
            argument(major: 3).flatMap { Int(exactly: $0) }
        }

        private mutating func argument(major: UInt8) -> UInt64? {
            guard offset < bytes.count, bytes[offset] >> 5 == major else { return nil }
            let info = bytes[offset] & 0x1f
            if info < 24 {
                offset += 1
                return UInt64(info)
            }
            guard info <= 27 else { return nil }
            let size = 1 << Int(info - 24)
            guard bytes.count - offset - 1 >= size else { return nil }
            var value: UInt64 = 0
            for index in 1...size { value = value << 8 | UInt64(bytes[offset + index]) }
            let minimum: UInt64 = [24, 0x100, 0x1_0000, 0x1_0000_0000][Int(info - 24)]
            guard value >= minimum else { return nil }
            offset += 1 + size
            return value
        }
    }
}

/// How much of a received body is built into values.
struct BodyPolicy: Sendable, Equatable {
    /// Kinds whose payload is validated and dropped in a request: the body is `.raw(kind, {})`.
    var droppedRequests: BodyKindSet = .none
    /// Kinds whose payload is validated and kept as its bytes (`.raw`), never built: what a host
    /// passes on unread.
    var keptAsBytes: BodyKindSet = .none
    /// An `Error` body's text is cut to 4 KiB as it is decoded.
    var boundsErrorText = false

    /// Everything built (a guest; a peer that is trusted).
    static let buildAll = BodyPolicy()

    /// A host reading its untrusted runtime: the bodies it never reads itself are never built: kept as
    /// bytes (answers to its calls, requests for a handler that reads them), or dropped from requests
    /// when `droppingUnread`. Error text is bounded.
    static func host(droppingUnread: Bool) -> BodyPolicy {
        BodyPolicy(droppedRequests: droppingUnread ? .unusedByHost : .none, keptAsBytes: .unusedByHost, boundsErrorText: true)
    }
}
