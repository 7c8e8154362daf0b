#if canImport(Glibc)
import Glibc
#endif
import CSystem

/// Unpredictable bytes for masking keys and handshake nonces (RFC 6455 §5.3 asks for
/// keys an attacker cannot predict). Draws from the kernel's CSPRNG in blocks, so that a
/// frame costs no system call. A class, so that one thread's connections can share one
/// (the network loop's: thousands of connections, one pool); not thread-safe.
public final class RandomSource {
    private var pool = [UInt8](repeating: 0, count: 4096)
    private var used: Int

    public init() { used = pool.count }

    public func next4() -> (UInt8, UInt8, UInt8, UInt8) {
        if used + 4 > pool.count { refill() }
        defer { used += 4 }
        return (pool[used], pool[used + 1], pool[used + 2], pool[used + 3])
    }

    public func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            let (a, b, c, d) = next4()
            out += [a, b, c, d]
        }
        return Array(out.prefix(count))
    }

    private func refill() {
        pool.withUnsafeMutableBytes { buffer in
            var filled = 0
            while filled < buffer.count {
                let n = csys_getrandom(buffer.baseAddress! + filled, buffer.count - filled)
                if n > 0 {
                    filled += n
                } else if errno != EINTR {
                    // getrandom cannot fail on Linux ≥ 3.17 once the pool is seeded;
                    // fall back to /dev/urandom rather than ever mask with zeros.
                    filled += Self.readURandom(UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
                }
            }
        }
        used = 0
    }

    private static func readURandom(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        let n = read(fd, buffer.baseAddress, buffer.count)
        return max(n, 0)
    }
}
