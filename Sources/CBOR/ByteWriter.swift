/// Appends canonical CBOR heads, strings and floats to a byte array.
struct ByteWriter {
    var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    var count: Int { bytes.count }

    /// Writes the shortest head for `major` and `argument`.
    mutating func writeHead(_ major: UInt8, _ argument: UInt64) {
        let type = major << 5
        switch argument {
        case 0..<24:
            bytes.append(type | UInt8(truncatingIfNeeded: argument))
        case 24...0xff:
            bytes.append(type | 24)
            bytes.append(UInt8(truncatingIfNeeded: argument))
        case 0x100...0xffff:
            bytes.append(type | 25)
            appendBigEndian(UInt16(truncatingIfNeeded: argument))
        case 0x1_0000...0xffff_ffff:
            bytes.append(type | 26)
            appendBigEndian(UInt32(truncatingIfNeeded: argument))
        default:
            bytes.append(type | 27)
            appendBigEndian(argument)
        }
    }

    /// Replaces the one-byte placeholder at `offset` by the shortest head, inserting bytes if needed.
    mutating func patchHead(at offset: Int, _ major: UInt8, _ argument: UInt64) {
        if argument < 24 {
            bytes[offset] = major << 5 | UInt8(truncatingIfNeeded: argument)
            return
        }
        var head = ByteWriter(capacity: 9)
        head.writeHead(major, argument)
        bytes.replaceSubrange(offset..<offset + 1, with: head.bytes)
    }

    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var shift = T.bitWidth - 8
        while shift >= 0 {
            bytes.append(UInt8(truncatingIfNeeded: value >> shift))
            shift -= 8
        }
    }

    /// Writes any fixed-width integer with the shortest head (major type 0 or 1).
    mutating func writeInteger<T: FixedWidthInteger>(_ value: T) {
        if value >= 0 {
            writeHead(Major.unsigned, UInt64(truncatingIfNeeded: value))
        } else {
            // -1 - value cannot overflow for a negative value and fits in UInt64.
            writeHead(Major.negative, UInt64(truncatingIfNeeded: -1 - value))
        }
    }

    mutating func writeBool(_ value: Bool) {
        bytes.append(value ? InitialByte.true : InitialByte.false)
    }

    mutating func writeText(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            writeHead(Major.text, UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func writeByteString(_ value: some Collection<UInt8>) {
        writeHead(Major.bytes, UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// Writes the shortest float that preserves `value` exactly; NaN becomes f97e00.
    mutating func writeDouble(_ value: Double) {
        if value.isNaN {
            bytes.append(InitialByte.half)
            appendBigEndian(UInt16(0x7e00))
            return
        }
        let single = Float(value)
        guard Double(single) == value else {
            bytes.append(InitialByte.double)
            appendBigEndian(value.bitPattern)
            return
        }
        if let half = HalfFloat.bits(exactly: single) {
            bytes.append(InitialByte.half)
            appendBigEndian(half)
        } else {
            bytes.append(InitialByte.single)
            appendBigEndian(single.bitPattern)
        }
    }
}
