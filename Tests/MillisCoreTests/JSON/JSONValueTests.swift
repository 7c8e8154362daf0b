import XCTest
@testable import MillisCore

final class JSONValueTests: XCTestCase {
    /// doubleValue is fed by the network (a pong's data): what Double(String) makes of
    /// "nan", "inf" or 1e999 is NaN or infinite, which traps in any later Int(_:). Only
    /// finite values come out.
    func testDoubleValueIsFiniteOrNil() throws {
        let finite: [(JSONValue, Double)] = [
            (.number("1234.567"), 1234.567), (.string("1234.567"), 1234.567), (.number("-1e308"), -1e308),
            (.string("1700000000000000000"), 1.7e18), (.number("0"), 0), (.number("-0"), 0),
            (.number("5e-324"), .leastNonzeroMagnitude), (.number("1e-999"), 0),
        ]
        for (value, expected) in finite {
            XCTAssertEqual(value.doubleValue, expected, "\(value)")
        }
        let notFinite: [JSONValue] = [
            .string("nan"), .string("NaN"), .string("-nan"), .string("inf"), .string("-inf"), .string("infinity"),
            .string("-Infinity"), .string("1e999"), .number("1e999"), .number("-1e999"),
            .number("123456789" + String(repeating: "0", count: 400)), .string(""), .string("x"), .null,
            .bool(true), .array([.number("1")]), .object([("a", .number("1"))]),
        ]
        for value in notFinite {
            XCTAssertNil(value.doubleValue, "\(value)")
        }
        // Parsed from a server message as it would arrive.
        let pong = try JSONParser.parse(#"{"method":"pong","data":1e999}"#)
        XCTAssertNil(pong["data"]?.doubleValue)
    }
}
