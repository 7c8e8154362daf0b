import Foundation
import XCTest
@testable import MillisCore

final class TimedSampleRingTests: XCTestCase {
    private struct Chunk: Equatable {
        var time: UInt64
        var samples: [Int16]
    }

    private func drain(_ ring: TimedSampleRing) -> [Chunk] {
        var out: [Chunk] = []
        ring.drain { samples, time in out.append(Chunk(time: time, samples: Array(samples))) }
        return out
    }

    private func write(_ ring: TimedSampleRing, _ samples: [Int16], at time: UInt64) {
        samples.withUnsafeBufferPointer { ring.write($0, at: time) }
    }

    func testChunksComeOutInOrderWithTheirTimesAndSamples() {
        let ring = TimedSampleRing(seconds: 1)
        // Every 16-bit word of the time is used, the top bit too.
        let times: [UInt64] = [0, 1, 0xF123_4567_89AB_CDEF, 62_500, 0x0000_FFFF_0000_FFFF]
        let chunks = times.enumerated().map { i, t in
            Chunk(time: t, samples: (0..<[1, 160, 320, TimedSampleRing.maxChunk, 7][i]).map { Int16(truncatingIfNeeded: $0 * 31 - i) })
        }
        for c in chunks { write(ring, c.samples, at: c.time) }
        XCTAssertEqual(drain(ring), chunks)
        XCTAssertEqual(drain(ring), [], "drained once")
        XCTAssertEqual(ring.dropped.load(ordering: .relaxed), 0)
    }

    func testEmptyChunkIsNotAChunk() {
        let ring = TimedSampleRing(seconds: 1)
        write(ring, [], at: 5)
        write(ring, [9], at: 6)
        XCTAssertEqual(drain(ring), [Chunk(time: 6, samples: [9])])
    }

    func testLongChunkIsSplitWithTimesAdvancingBySamples() {
        let ring = TimedSampleRing(seconds: 2)
        let t0: UInt64 = 1 << 40 + 12_345
        let samples = (0..<10_000).map { Int16(truncatingIfNeeded: $0) }
        write(ring, samples, at: t0)
        let out = drain(ring)
        XCTAssertEqual(out.map(\.samples.count), [4096, 4096, 1808])
        XCTAssertEqual(out.map(\.time), [t0, t0 + 4096 * 62_500, t0 + 8192 * 62_500])
        XCTAssertEqual(out.flatMap(\.samples), samples)
    }

    func testFullRingDropsWholeChunksAndCountsTheirSamples() {
        let ring = TimedSampleRing(seconds: 1)
        // Each 320-sample chunk takes its samples plus a 5-word header.
        let capacity = SPSCRing(minimumCapacity: 16_000).capacity
        let fit = capacity / 325
        for k in 0..<(fit + 10) {
            write(ring, [Int16](repeating: Int16(k), count: 320), at: UInt64(k) * 20_000_000)
        }
        XCTAssertEqual(ring.dropped.load(ordering: .relaxed), 10 * 320)
        let out = drain(ring)
        XCTAssertEqual(out.count, fit)
        for (k, c) in out.enumerated() {
            XCTAssertEqual(c, Chunk(time: UInt64(k) * 20_000_000, samples: [Int16](repeating: Int16(k), count: 320)))
        }
        // Room again once drained.
        write(ring, [7, 7, 7], at: 99)
        XCTAssertEqual(drain(ring), [Chunk(time: 99, samples: [7, 7, 7])])
        XCTAssertEqual(ring.dropped.load(ordering: .relaxed), 10 * 320)
    }

    /// A chunk longer than the room left is dropped whole, not as a hole in its middle
    /// (which the recording would close up, shifting the rest of it).
    func testAChunkThatDoesNotFitIsDroppedWhole() {
        let ring = TimedSampleRing(seconds: 1)
        let capacity = SPSCRing(minimumCapacity: 16_000).capacity
        let first = (0..<(capacity - 3_000)).map { Int16(truncatingIfNeeded: $0) }
        write(ring, first, at: 1_000)
        let tooLong = [Int16](repeating: 7, count: 5_000)
        write(ring, tooLong, at: 9_000_000_000)
        XCTAssertEqual(ring.dropped.load(ordering: .relaxed), tooLong.count)
        let out = drain(ring)
        XCTAssertEqual(out.flatMap(\.samples), first)
        XCTAssertEqual(out.first?.time, 1_000)
    }

    /// One producer thread, one consumer: every chunk seen is whole, at its time, in order.
    func testConcurrentProducerAndConsumerNeverSeePartialChunks() {
        let ring = TimedSampleRing(seconds: 1)
        let total = 400_000
        let done = Locked(false)
        let producer = Thread {
            var next = 0
            var size = 1
            while next < total {
                let n = min(size, total - next)
                let chunk = (next..<(next + n)).map { Int16(truncatingIfNeeded: $0) }
                chunk.withUnsafeBufferPointer { ring.write($0, at: UInt64(next) * 62_500) }
                next += n
                size = size % 5000 + 97
            }
            done.withLock { $0 = true }
        }
        producer.start()
        var seen = 0
        var lastEnd = 0
        var failures = 0
        func consume() {
            ring.drain { samples, time in
                let start = Int(time / 62_500)
                if start < lastEnd || samples.isEmpty || samples.count > TimedSampleRing.maxChunk { failures += 1 }
                for (i, s) in samples.enumerated() where s != Int16(truncatingIfNeeded: start + i) {
                    failures += 1
                    break
                }
                lastEnd = start + samples.count
                seen += samples.count
            }
        }
        while !done.withLock({ $0 }) { consume() }
        consume()
        XCTAssertEqual(failures, 0)
        XCTAssertEqual(seen + ring.dropped.load(ordering: .relaxed), total)
        XCTAssertGreaterThan(seen, 0)
    }
}
