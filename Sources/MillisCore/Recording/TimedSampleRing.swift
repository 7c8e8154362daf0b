import Synchronization

/// Chunks of 16 kHz samples, each with the monotonic time of its first sample, from
/// one producer thread to one consumer (a recording's writer thread). Lock-free: a
/// producer never waits. A chunk that does not fit is dropped and counted.
final class TimedSampleRing: @unchecked Sendable {
    /// Header: the sample count, then the time in four 16-bit words.
    private static let headerWords = 5
    /// A chunk longer than this is split (the count must fit the header's word).
    static let maxChunk = 4096
    private let ring: SPSCRing
    /// Samples dropped because the ring was full (the writer fell behind).
    let dropped = Atomic<Int>(0)

    init(seconds: Int) {
        ring = SPSCRing(minimumCapacity: seconds * 16_000)
    }

    /// Producer: `samples`, the first of which was (or will be) heard at `time`.
    func write(_ samples: UnsafeBufferPointer<Int16>, at time: UInt64) {
        // All or nothing: a hole in the middle of a long chunk would shift the rest of
        // it when the recording joins the pieces.
        let pieces = (samples.count + Self.maxChunk - 1) / Self.maxChunk
        guard samples.count + pieces * Self.headerWords <= ring.capacity - ring.count else {
            dropped.add(samples.count, ordering: .relaxed)
            return
        }
        var offset = 0
        while offset < samples.count {
            let n = min(Self.maxChunk, samples.count - offset)
            let t = time &+ UInt64(offset) * 62_500
            let header: (Int16, Int16, Int16, Int16, Int16) = (
                Int16(n), Int16(truncatingIfNeeded: t), Int16(truncatingIfNeeded: t >> 16),
                Int16(truncatingIfNeeded: t >> 32), Int16(truncatingIfNeeded: t >> 48))
            let stored = withUnsafeBytes(of: header) { raw in
                ring.writeRecord(raw.bindMemory(to: Int16.self), UnsafeBufferPointer(rebasing: samples[offset..<offset + n]))
            }
            if !stored { dropped.add(n, ordering: .relaxed) }
            offset += n
        }
    }

    /// Consumer: every complete chunk, in order.
    func drain(_ body: (UnsafeBufferPointer<Int16>, UInt64) -> Void) {
        var header = [Int16](repeating: 0, count: Self.headerWords)
        var chunk = [Int16](repeating: 0, count: Self.maxChunk)
        while ring.count >= Self.headerWords {
            header.withUnsafeMutableBufferPointer { _ = ring.read(into: $0) }
            let n = Int(header[0])
            var time: UInt64 = 0
            for i in 0..<4 { time |= UInt64(UInt16(bitPattern: header[1 + i])) << (16 * UInt64(i)) }
            chunk.withUnsafeMutableBufferPointer { c in
                let got = ring.read(into: UnsafeMutableBufferPointer(rebasing: c[0..<n]))
                body(UnsafeBufferPointer(rebasing: c[0..<got]), time)
            }
        }
    }
}
