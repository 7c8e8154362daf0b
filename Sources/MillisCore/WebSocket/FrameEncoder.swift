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
        out.append(key.0)
        out.append(key.1)
        out.append(key.2)
        out.append(key.3)
        let start = out.count
        // Typed, so that the append is one copy rather than a byte loop.
        out.append(contentsOf: UnsafeBufferPointer(start: payload.baseAddress?.assumingMemoryBound(to: UInt8.self), count: count))
        // Eight bytes at a time: the key in memory order, twice, so the bytes line up on
        // any endianness (a 4-byte key repeats every 4 bytes).
        let key32 = UInt64(withUnsafeBytes(of: key) { $0.loadUnaligned(as: UInt32.self) })
        let key64 = key32 | key32 << 32
        out.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress! + start
            var i = 0
            while i + 8 <= count {
                let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                base.storeBytes(of: word ^ key64, toByteOffset: i, as: UInt64.self)
                i += 8
            }
            withUnsafeBytes(of: key) { keyBytes in
                while i < count {
                    base.storeBytes(of: base.load(fromByteOffset: i, as: UInt8.self) ^ keyBytes[i & 3], toByteOffset: i, as: UInt8.self)
                    i += 1
                }
            }
        }
    }

    public static func encode(opcode: Opcode, fin: Bool = true, payload: [UInt8],
                              key: (UInt8, UInt8, UInt8, UInt8), into out: inout [UInt8]) {
        payload.withUnsafeBytes { encode(opcode: opcode, fin: fin, payload: $0, key: key, into: &out) }
    }
}
