import XCTest
@testable import MillisCore

/// The rings' contents and, for the speaker's queue, its memory: resident only as far as
/// it holds audio.
final class SPSCRingTests: XCTestCase {
    private func fill(_ ring: SPSCRing, _ values: [Int16]) -> Int {
        values.withUnsafeBufferPointer { ring.write($0) }
    }

    private func drain(_ ring: SPSCRing, _ n: Int) -> [Int16] {
        var out = [Int16](repeating: -1, count: n)
        let got = out.withUnsafeMutableBufferPointer { ring.read(into: $0) }
        return Array(out[0..<got])
    }

    func testBothKindsKeepOrderAcrossTheWrap() {
        for onDemand in [false, true] {
            let ring = SPSCRing(minimumCapacity: 100, onDemand: onDemand)
            XCTAssertEqual(ring.capacity, 128)
            var next: Int16 = 0
            var expected: Int16 = 0
            for _ in 0..<10 {
                let chunk = (0..<90).map { i in next &+ Int16(i) }
                XCTAssertEqual(fill(ring, chunk), 90)
                next &+= 90
                for v in drain(ring, 90) {
                    XCTAssertEqual(v, expected)
                    expected &+= 1
                }
            }
            XCTAssertEqual(fill(ring, [Int16](repeating: 7, count: 200)), 128, "no more than the capacity")
        }
    }

    func testAnOnDemandRingIsResidentOnlyAsFarAsItIsWritten() throws {
        let ring = SPSCRing(minimumCapacity: 1 << 20, onDemand: true)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let idle = try XCTUnwrap(ring.residentBytes, "mincore is available on Linux")
        XCTAssertEqual(idle, 0, "nothing written, nothing resident")
        // Ten seconds of agent audio at 16 kHz: 320 000 bytes of a 2 MiB ring.
        let second = [Int16](repeating: 1000, count: 16_000)
        for _ in 0..<10 { XCTAssertEqual(fill(ring, second), 16_000) }
        let written = try XCTUnwrap(ring.residentBytes)
        XCTAssertGreaterThanOrEqual(written, 320_000)
        XCTAssertLessThanOrEqual(written, 320_000 + 2 * page)
        // Not released while audio is queued: the consumer may be reading it.
        ring.releaseIdleMemory()
        XCTAssertEqual(ring.residentBytes, written)
        XCTAssertEqual(drain(ring, 80_000).count, 80_000)
        ring.releaseIdleMemory()
        XCTAssertEqual(ring.residentBytes, written, "half played: kept")
        XCTAssertEqual(drain(ring, 200_000).count, 80_000)
        ring.releaseIdleMemory()
        XCTAssertEqual(ring.residentBytes, 0, "played out: given back")
        // The next answer goes on where the last stopped, and reads back whole.
        XCTAssertEqual(fill(ring, (0..<1000).map { Int16($0) }), 1000)
        XCTAssertEqual(drain(ring, 1000), (0..<1000).map { Int16($0) })
    }

    func testAnAudioThreadsRingIsTouchedUpFront() {
        let ring = SPSCRing(minimumCapacity: 16_000)
        XCTAssertNil(ring.residentBytes, "allocated and touched, not mapped on demand")
    }
}
