import CAudio

/// The device sample formats the engine reads and writes, and their conversion to and
/// from mono floats in [-1, 1] (channels are averaged on the way in and copied on the
/// way out).
enum SampleFormat {
    case s16, float32, s32, s24in32, s24packed

    /// The order in which they are asked for: 16-bit first (no conversion cost, what
    /// most boards and every USB headset offer), then the wider ones.
    static let preference: [SampleFormat] = [.s16, .float32, .s32, .s24in32, .s24packed]

    var alsa: snd_pcm_format_t {
        switch self {
        case .s16: return SND_PCM_FORMAT_S16_LE
        case .float32: return SND_PCM_FORMAT_FLOAT_LE
        case .s32: return SND_PCM_FORMAT_S32_LE
        case .s24in32: return SND_PCM_FORMAT_S24_LE
        case .s24packed: return SND_PCM_FORMAT_S24_3LE
        }
    }

    var alsaName: String {
        switch self {
        case .s16: return "S16_LE"
        case .float32: return "FLOAT_LE"
        case .s32: return "S32_LE"
        case .s24in32: return "S24_LE"
        case .s24packed: return "S24_3LE"
        }
    }

    var bytes: Int {
        switch self {
        case .s16: return 2
        case .s24packed: return 3
        case .float32, .s32, .s24in32: return 4
        }
    }

    /// A float sample (nominally in [-1, 1]) as PCM16: ×32768, rounded, clamped to the
    /// Int16 range; NaN becomes 0. Never traps, whatever the float: a float WAV or a
    /// float device can hold NaN, infinities or huge values, and
    /// `Int16(clamping: Int(x * 32768))` traps on those in `Int(_:)`.
    static func pcm16(_ x: Float) -> Int16 {
        let scaled = (x * 32768).rounded()
        if scaled >= 32767 { return .max }
        if scaled <= -32768 { return .min }
        // Only NaN is left out of range here (every comparison with it is false).
        return scaled == scaled ? Int16(scaled) : 0
    }

    /// Reads `frames` interleaved frames of `channels` channels, appending their mono mix.
    func appendMono(from raw: UnsafeRawPointer, frames: Int, channels: Int, to out: inout [Float]) {
        let scale = 1 / Float(channels)
        for f in 0..<frames {
            var sum: Float = 0
            for c in 0..<channels {
                sum += sample(raw, index: f * channels + c)
            }
            out.append(sum * scale)
        }
    }

    private func sample(_ raw: UnsafeRawPointer, index i: Int) -> Float {
        switch self {
        case .s16:
            return Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self))) / 32768
        case .float32:
            return Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
        case .s32:
            return Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))) / 2_147_483_648
        case .s24in32:
            // 24 significant bits in the low three bytes; sign-extend from bit 23.
            let v = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
            return Float((v << 8) >> 8) / 8_388_608
        case .s24packed:
            let b = raw.advanced(by: i * 3).assumingMemoryBound(to: UInt8.self)
            let v = Int32(bitPattern: UInt32(b[0]) << 8 | UInt32(b[1]) << 16 | UInt32(b[2]) << 24) >> 8
            return Float(v) / 8_388_608
        }
    }

    /// Writes `mono` to every one of `channels` interleaved channels at `raw`.
    func writeInterleaved(_ mono: UnsafeBufferPointer<Float>, channels: Int, to raw: UnsafeMutableRawPointer) {
        for (f, x) in mono.enumerated() {
            let v = max(-1, min(1, x))
            for c in 0..<channels {
                let i = f * channels + c
                switch self {
                case .s16:
                    // ×32768 undoes the reader's ÷32768 exactly: PCM16 passes bit for bit.
                    raw.storeBytes(of: Int16(clamping: Int((v * 32768).rounded())).littleEndian, toByteOffset: i * 2, as: Int16.self)
                case .float32:
                    raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
                case .s32:
                    raw.storeBytes(of: Int32(clamping: Int64((Double(v) * 2_147_483_648).rounded())).littleEndian, toByteOffset: i * 4, as: Int32.self)
                case .s24in32:
                    raw.storeBytes(of: Int32(min(8_388_607, Int((v * 8_388_608).rounded()))).littleEndian, toByteOffset: i * 4, as: Int32.self)
                case .s24packed:
                    let s = Int32(min(8_388_607, Int((v * 8_388_608).rounded())))
                    let b = raw.advanced(by: i * 3).assumingMemoryBound(to: UInt8.self)
                    b[0] = UInt8(truncatingIfNeeded: s)
                    b[1] = UInt8(truncatingIfNeeded: s >> 8)
                    b[2] = UInt8(truncatingIfNeeded: s >> 16)
                }
            }
        }
    }
}
