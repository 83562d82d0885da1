/// Returns the offset of the first byte that breaks UTF-8 well-formedness in `start..<end`, or nil.
///
/// Rejects overlong forms, surrogates and code points above U+10FFFF (RFC 3629).
func firstInvalidUTF8(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int? {
    var index = start
    let base = UnsafeRawPointer(buffer.baseAddress!)
    while index < end {
        // ASCII fast path, eight bytes at a time.
        while end - index >= 8, base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
            index += 8
        }
        guard index < end else { return nil }
        let lead = buffer[index]
        if lead < 0x80 {
            index += 1
            continue
        }
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xbf
        switch lead {
        case 0xc2...0xdf: length = 2
        case 0xe0: length = 3; low = 0xa0
        case 0xe1...0xec, 0xee...0xef: length = 3
        case 0xed: length = 3; high = 0x9f
        case 0xf0: length = 4; low = 0x90
        case 0xf1...0xf3: length = 4
        case 0xf4: length = 4; high = 0x8f
        default: return index
        }
        guard end - index >= length else { return index }
        let second = buffer[index + 1]
        guard second >= low && second <= high else { return index }
        var continuation = 2
        while continuation < length {
            guard buffer[index + continuation] & 0xc0 == 0x80 else { return index }
            continuation += 1
        }
        index += length
    }
    return nil
}
