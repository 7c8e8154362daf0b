import XCTest
@testable import MillisCore

final class ServerMessageTests: XCTestCase {
    func testParsesEveryKnownMethod() throws {
        XCTAssertEqual(try ServerMessage.parse(#"{"method":"onready"}"#), .ready(sessionId: nil, payload: .null))
        XCTAssertEqual(try ServerMessage.parse(#"{"method":"start_answering"}"#), .startAnswering)
        XCTAssertEqual(try ServerMessage.parse(#"{"method":"clear"}"#), .clear)
        XCTAssertEqual(try ServerMessage.parse(#"{"method":"pause"}"#), .pause)
        XCTAssertEqual(try ServerMessage.parse(#"{"method":"unpause"}"#), .unpause)
        XCTAssertEqual(try ServerMessage.parse(#"{"method":"pong","data":5}"#), .pong(.number("5")))
        XCTAssertEqual(try ServerMessage.parse(#"{"method":"ontranscript","data":"a"}"#), .transcript(text: "a", isFinal: false))
        XCTAssertEqual(try ServerMessage.parse(#"{"method":"onsessionended"}"#), .sessionEnded)
        XCTAssertEqual(try ServerMessage.parse(#"{"method":"x"}"#), .other(method: "x"))
    }

    func testRefusesMessagesWithoutAMethod() {
        for text in ["{}", #"{"method":1}"#, "\"onready\"", "nope"] {
            XCTAssertThrowsError(try ServerMessage.parse(text), text) { error in
                XCTAssertEqual((error as! MillisError).status, .badMessage)
            }
        }
    }
}
