/// ITU-T G.711 companding (µ-law and A-law), what telephone networks carry: 8-bit codes
/// for 14- and 13-bit linear samples. Encoding follows the recommendation's segment
/// tables, expressed arithmetically.
enum G711 {
    private static let muLawBias = 0x84
    private static let muLawClip = 32635

    static func encodeMuLaw(_ sample: Int16) -> UInt8 {
        var value = Int(sample)
        let sign = value < 0 ? 0x80 : 0
        if value < 0 { value = -value }
        value = min(value, muLawClip) + muLawBias
        var exponent = 7
        var mask = 0x4000
        while exponent > 0 && value & mask == 0 {
            exponent -= 1
            mask >>= 1
        }
        let mantissa = (value >> (exponent + 3)) & 0x0F
        return UInt8(~(sign | (exponent << 4) | mantissa) & 0xFF)
    }

    static func decodeMuLaw(_ code: UInt8) -> Int16 {
        let value = Int(~code & 0xFF)
        let exponent = (value >> 4) & 0x07
        let mantissa = value & 0x0F
        let magnitude = ((mantissa << 3) + muLawBias) << exponent
        return Int16(value & 0x80 != 0 ? muLawBias - magnitude : magnitude - muLawBias)
    }

    static func encodeALaw(_ sample: Int16) -> UInt8 {
        var value = Int(sample) >> 3  // A-law works on 13 bits
        let sign = value >= 0 ? 0x80 : 0
        if value < 0 { value = -value - 1 }
        value = min(value, 0x0FFF)
        var code: Int
        if value < 32 {
            code = value >> 1
        } else {
            var exponent = 1
            while (value >> (exponent + 4)) > 1 { exponent += 1 }
            code = (exponent << 4) | ((value >> exponent) & 0x0F)
        }
        return UInt8((sign | code) ^ 0x55)
    }

    static func decodeALaw(_ code: UInt8) -> Int16 {
        let value = Int(code ^ 0x55)
        let exponent = (value >> 4) & 0x07
        let mantissa = value & 0x0F
        var magnitude = exponent == 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1)
        if value & 0x80 == 0 { magnitude = -magnitude }
        return Int16(magnitude)
    }
}
