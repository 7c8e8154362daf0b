import XCTest
@testable import MillisCore

final class ClientConfigTests: XCTestCase {
    func testHeadersAreKeptInOrderTrimmedAndRepeatable() throws {
        var config = ClientConfig()
        try config.addHeader(name: "Origin", value: " https://kiosk.example ")
        try config.addHeader(name: "X-Route", value: "a\tb")
        try config.addHeader(name: "X-Route", value: "c")
        XCTAssertEqual(config.extraHeaders.map { "\($0.name): \($0.value)" },
                       ["Origin: https://kiosk.example", "X-Route: a\tb", "X-Route: c"])
        config.clearHeaders()
        XCTAssertTrue(config.extraHeaders.isEmpty)
    }

    func testHeadersThatWouldBreakTheHandshakeAreRefusedWithAReason() {
        let cases: [(String, String, String)] = [
            ("", "v", "not an HTTP field name"),
            ("X Y", "v", "not an HTTP field name"),
            ("X:Y", "v", "not an HTTP field name"),
            ("X\r\nHost", "v", "not an HTTP field name"),
            ("Host", "evil", "written by the WebSocket handshake"),
            ("upgrade", "h2c", "written by the WebSocket handshake"),
            ("Connection", "close", "written by the WebSocket handshake"),
            ("Content-Length", "5", "written by the WebSocket handshake"),
            ("Transfer-Encoding", "chunked", "written by the WebSocket handshake"),
            ("Sec-WebSocket-Key", "x", "written by the WebSocket handshake"),
            ("sec-websocket-protocol", "chat", "written by the WebSocket handshake"),
            ("X-A", "v\r\nX-Injected: 1", "U+000D"),
            ("X-A", "v\nw", "U+000A"),
            ("X-A", "v\u{0}w", "U+0000"),
            ("X-A", String(repeating: "v", count: 8193), "at most 8192"),
            (String(repeating: "n", count: 257), "v", "not an HTTP field name"),
        ]
        for (name, value, expected) in cases {
            var config = ClientConfig()
            XCTAssertThrowsError(try config.addHeader(name: name, value: value), name) { error in
                let e = error as! MillisError
                XCTAssertEqual(e.status, .invalidArgument)
                XCTAssertTrue(e.message.contains(expected), "\(name): \(e.message)")
            }
            XCTAssertTrue(config.extraHeaders.isEmpty)
        }
    }

    func testAtMost64Headers() throws {
        var config = ClientConfig()
        for i in 0..<ClientConfig.maxExtraHeaders { try config.addHeader(name: "X-\(i)", value: "v") }
        XCTAssertThrowsError(try config.addHeader(name: "X-65", value: "v")) { error in
            XCTAssertTrue((error as! MillisError).message.contains("at most 64"))
        }
    }
}
