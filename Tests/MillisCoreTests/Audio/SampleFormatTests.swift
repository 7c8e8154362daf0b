import XCTest
@testable import MillisCore

final class SampleFormatTests: XCTestCase {
    /// Every PCM16 value survives float and back exactly, as the old conversion did.
    func testPCM16RoundTripsEveryInt16() {
        for v in Int(Int16.min)...Int(Int16.max) {
            XCTAssertEqual(SampleFormat.pcm16(Float(v) / 32768), Int16(v))
        }
    }

    /// What a float device or file can hold: NaN is 0, the rest clamps; no trap.
    func testPCM16OfAnyFloatNeverTraps() {
        XCTAssertEqual(SampleFormat.pcm16(.nan), 0)
        XCTAssertEqual(SampleFormat.pcm16(-.nan), 0)
        XCTAssertEqual(SampleFormat.pcm16(.signalingNaN), 0)
        XCTAssertEqual(SampleFormat.pcm16(.infinity), .max)
        XCTAssertEqual(SampleFormat.pcm16(-.infinity), .min)
        XCTAssertEqual(SampleFormat.pcm16(.greatestFiniteMagnitude), .max)
        XCTAssertEqual(SampleFormat.pcm16(-.greatestFiniteMagnitude), .min)
        XCTAssertEqual(SampleFormat.pcm16(1.0), .max)
        XCTAssertEqual(SampleFormat.pcm16(-1.0), .min)
        XCTAssertEqual(SampleFormat.pcm16(1.5), .max)
        XCTAssertEqual(SampleFormat.pcm16(.leastNonzeroMagnitude), 0)
        XCTAssertEqual(SampleFormat.pcm16(0.5), 16384)
    }
}
