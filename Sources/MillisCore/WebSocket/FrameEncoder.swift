/// Encodes client frames (RFC 6455 §5.2): always masked, as §5.3 requires of clients.
public enum FrameEncoder {
    /// Appends one frame to `out`, masking `payload` with `key` on the way.
    public static func encode(opcode: Opcode, fin: Bool = true, payload: UnsafeRawBufferPointer,
                              key: (UInt8, UInt8, UInt8, UInt8), into out: inout [UInt8]) {
        out.append((fin ? 0x80 : 0) | opcode.rawValue)
        let count = payload.count
        if count < 126 {
            out.append(0x80 | UInt8(count))
        } else if count <= 0xFFFF {
            out.append(0x80 | 126)
            out.append(UInt8(count >> 8))
            out.append(UInt8(count & 0xFF))
        } else {
            out.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: UInt64(count) >> UInt64(shift))) }
        }
        let mask = [key.0, key.1, key.2, key.3]
        out.append(contentsOf: mask)
        let start = out.count
        out.append(contentsOf: payload)
        out.withUnsafeMutableBufferPointer { buffer in
            for i in 0..<count { buffer[start + i] ^= mask[i & 3] }
        }
    }

    public static func encode(opcode: Opcode, fin: Bool = true, payload: [UInt8],
                              key: (UInt8, UInt8, UInt8, UInt8), into out: inout [UInt8]) {
        payload.withUnsafeBytes { encode(opcode: opcode, fin: fin, payload: $0, key: key, into: &out) }
    }
}
