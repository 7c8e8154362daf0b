import XCTest
@testable import MillisCore

final class JSONParserTests: XCTestCase {
    func testParsesEveryKindAndKeepsMemberOrderAndNumberText() throws {
        let value = try JSONParser.parse(#"{"b": [1.50, -2e3, true, false, null], "a": "x\"y\u00e9\ud83d\ude00"}"#)
        guard case .object(let members) = value else { return XCTFail("not an object") }
        XCTAssertEqual(members.map(\.key), ["b", "a"])
        XCTAssertEqual(value["b"], .array([.number("1.50"), .number("-2e3"), .bool(true), .bool(false), .null]))
        XCTAssertEqual(value["a"], .string("x\"yé😀"))
    }

    func testRoundTripsThroughTheWriter() throws {
        let text = #"{"agent":{"agent_id":"a","agent_config":{"prompt":"line\nbreak","vad_threshold":0.50}},"metadata":{}}"#
        XCTAssertEqual(try JSONParser.parse(text).jsonText, text)
    }

    func testRejectsMalformedInputWithAnOffset() {
        let cases: [(String, String)] = [
            (#"{"a": "#, "end of input"),
            (#"{"a" 1}"#, "expected ':'"),
            (#"[1, 2"#, "end of input"),
            (#"{"a": 1} x"#, "after the JSON value"),
            (#"01"#, "after the JSON value"),
            (#""\x""#, "invalid escape"),
            (#""\ud800""#, "surrogate"),
            ("\"a\u{01}\"", "control character"),
            ("tru", "'true'"),
            ("", "end of input"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try JSONParser.parse(text), text) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(text): \(error)")
            }
        }
    }

    func testRefusesNestingDeeperThanTheLimit() {
        let deep = String(repeating: "[", count: JSONParser.maxDepth + 1) + String(repeating: "]", count: JSONParser.maxDepth + 1)
        XCTAssertThrowsError(try JSONParser.parse(deep))
        let fine = String(repeating: "[", count: 10) + String(repeating: "]", count: 10)
        XCTAssertNoThrow(try JSONParser.parse(fine))
    }

    func testRejectsInvalidUTF8InStrings() {
        XCTAssertThrowsError(try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]))
    }

    func testWriterEscapesControlCharacters() {
        XCTAssertEqual(JSONWriter.quoted("a\u{01}\"\\\n"), #""a\u0001\"\\\n""#)
    }
}
