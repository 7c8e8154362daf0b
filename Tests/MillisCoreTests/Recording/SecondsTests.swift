import XCTest
@testable import MillisCore

final class SecondsTests: XCTestCase {
    func testSecondsWithSixDecimals() {
        XCTAssertEqual(Seconds.format(0), "0.000000")
        XCTAssertEqual(Seconds.format(1_500_000_000), "1.500000")
        XCTAssertEqual(Seconds.format(12_345_678_901), "12.345678", "truncated to the microsecond")
        XCTAssertEqual(Seconds.format(999), "0.000000")
        XCTAssertEqual(Seconds.format(1_000), "0.000001")
        XCTAssertEqual(Seconds.format(-1_500_000), "-0.001500")
        XCTAssertEqual(Seconds.format(-999), "0.000000", "no negative zero")
        XCTAssertEqual(Seconds.format(Int64.min), "-9223372036.854775")
        XCTAssertEqual(Seconds.format(Int64.max), "9223372036.854775")
    }

    func testMillisecondsWithThreeDecimals() {
        XCTAssertEqual(Seconds.formatMilliseconds(0), "0.000")
        XCTAssertEqual(Seconds.formatMilliseconds(612_345_678), "612.345")
        XCTAssertEqual(Seconds.formatMilliseconds(1_000), "0.001")
        XCTAssertEqual(Seconds.formatMilliseconds(-50_000_000), "-50.000")
    }

    func testEveryFormattedTimeIsAJSONNumber() throws {
        for ns: Int64 in [0, 1, -1_000, 62_500, 3_600_000_000_000, -12_345_678_901] {
            for text in [Seconds.format(ns), Seconds.formatMilliseconds(ns)] {
                XCTAssertEqual(try JSONParser.parse(text), .number(text))
            }
        }
    }

    /// A latency reaches the timeline as a Double: NaN, an infinity or a value beyond
    /// Int64 nanoseconds trapped in `Int64(ms * 1_000_000)`; now they have no text.
    func testMillisecondsFromADoubleNeverTrap() {
        XCTAssertEqual(Seconds.formatMilliseconds(612.3456789), "612.345")
        XCTAssertEqual(Seconds.formatMilliseconds(-50.0), "-50.000")
        XCTAssertEqual(Seconds.formatMilliseconds(0.0), "0.000")
        XCTAssertEqual(Seconds.formatMilliseconds(9_000_000_000_000.0), "9000000000000.000")
        for bad in [Double.nan, -.nan, .infinity, -.infinity, 1e300, -1e300, 9.3e12, Double.greatestFiniteMagnitude] {
            XCTAssertNil(Seconds.formatMilliseconds(bad), "\(bad)")
        }
    }
}
