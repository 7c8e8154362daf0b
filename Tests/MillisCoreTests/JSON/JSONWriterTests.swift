import XCTest
@testable import MillisCore

final class JSONWriterTests: XCTestCase {
    /// A `.number` built in code from a Double's description ("nan", "inf", "-inf") or
    /// anything else that is not a JSON number is written as null: the writer never
    /// produces a document that does not parse.
    func testInvalidNumberTextIsWrittenAsNull() throws {
        let bad = ["nan", "-nan", "inf", "-inf", "infinity", "NaN", "", "-", "01", "1.", ".5", "1e", "1e+", "+1",
                   "0x10", " 1", "1 ", "1,2", "١", "1_000", "--1", "1.2.3", "\u{0}"]
        for text in bad {
            XCTAssertFalse(JSONWriter.isNumberLiteral(text), text)
            let written = JSONValue.array([.number(text)]).jsonText
            XCTAssertEqual(written, "[null]", text)
            XCTAssertEqual(try JSONParser.parse(written), .array([.null]))
        }
        for text in ["0", "-0", "1", "-12.50", "1e9", "1E+9", "2.5e-3", "123456789012345678901234567890",
                     "1e999", "-0.0e-0", String(Double.greatestFiniteMagnitude), String(Double.leastNonzeroMagnitude), String(1e20)] {
            XCTAssertTrue(JSONWriter.isNumberLiteral(text), text)
            XCTAssertEqual(JSONValue.number(text).jsonText, text)
            XCTAssertEqual(try JSONParser.parse(text), .number(text))
        }
    }

    /// Strings from the server (a session id, a transcript) may hold anything a Swift
    /// String can: every control character, DEL, U+2028/2029, non-characters, the BOM,
    /// combining marks, astral scalars. Written, they parse back to the same string.
    func testAnyStringRoundTrips() throws {
        var scalars: [Unicode.Scalar] = (0..<0x80).compactMap(Unicode.Scalar.init(_:))
        scalars += [0x80, 0x9F, 0xA0, 0xAD, 0x2028, 0x2029, 0xFEFF, 0xFFFD, 0xFFFE, 0xFFFF, 0x1F600, 0x10FFFF,
                    0x0301, 0xE000, 0x1D11E].compactMap(Unicode.Scalar.init(_:))
        var s = ""
        s.unicodeScalars.append(contentsOf: scalars)
        for text in [s, "\"\\/\u{0}", String(repeating: "\u{0}\u{1F}", count: 1000), "e\u{301}\u{301}\u{301}"] {
            let quoted = JSONWriter.quoted(text)
            XCTAssertEqual(try JSONParser.parse(quoted), .string(text))
            XCTAssertFalse(quoted.unicodeScalars.contains { $0.value < 0x20 }, "a raw control character was written")
        }
    }
}
