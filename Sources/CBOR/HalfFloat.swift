/// Conversions between IEEE 754 binary16 bit patterns and Swift floats, exact or not at all.
enum HalfFloat {
    /// The binary16 pattern of `value` when it is exactly representable (NaN excluded), else nil.
    static func bits(exactly value: Float) -> UInt16? {
        let bits = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: bits >> 16) & 0x8000
        let biasedExponent = Int((bits >> 23) & 0xff)
        let mantissa = bits & 0x7f_ffff
        if biasedExponent == 0xff {
            return mantissa == 0 ? sign | 0x7c00 : nil
        }
        if biasedExponent == 0 {
            // Zero stays zero; binary32 subnormals are far below binary16's range.
            return mantissa == 0 ? sign : nil
        }
        let exponent = biasedExponent - 127
        if exponent >= -14 && exponent <= 15 {
            guard mantissa & 0x1fff == 0 else { return nil }
            return sign | UInt16(exponent + 15) << 10 | UInt16(truncatingIfNeeded: mantissa >> 13)
        }
        if exponent >= -24 && exponent < -14 {
            // binary16 subnormal: value = k × 2^-24 with k < 1024.
            let significand = mantissa | 0x80_0000
            let shift = UInt32(-exponent - 1)
            guard significand & ((1 << shift) - 1) == 0 else { return nil }
            return sign | UInt16(truncatingIfNeeded: significand >> shift)
        }
        return nil
    }

    /// The value of a binary16 pattern.
    static func double(fromBits bits: UInt16) -> Double {
        let exponent = Int((bits >> 10) & 0x1f)
        let mantissa = Double(bits & 0x3ff)
        let magnitude: Double
        switch exponent {
        case 0: magnitude = mantissa * 0x1p-24
        case 31: magnitude = mantissa == 0 ? .infinity : .nan
        default: magnitude = (mantissa + 1024) * Double(sign: .plus, exponent: exponent - 25, significand: 1)
        }
        return bits & 0x8000 != 0 ? -magnitude : magnitude
    }
}
