import XCTest
@testable import MillisCore

final class HandshakeTests: XCTestCase {
    /// RFC 6455 §1.3's own example.
    func testAcceptValueOfTheRFCExample() {
        XCTAssertEqual(Handshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    func testRequestCarriesTheRequiredHeaders() {
        let request = Handshake(key: "dGhlIHNhbXBsZSBub25jZQ==").request(hostHeader: "example.com:8080", path: "/millis", userAgent: "t")
        XCTAssertTrue(request.hasPrefix("GET /millis HTTP/1.1\r\n"))
        for header in ["Host: example.com:8080", "Upgrade: websocket", "Connection: Upgrade",
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"] {
            XCTAssertTrue(request.contains(header + "\r\n"), header)
        }
        XCTAssertTrue(request.hasSuffix("\r\n\r\n"))
    }

    func testExtraHeadersFollowOursInOrderAndAUserAgentReplacesOurs() {
        let h = Handshake(key: "dGhlIHNhbXBsZSBub25jZQ==")
        let plain = h.request(hostHeader: "h", path: "/", userAgent: "libmillis/1")
        XCTAssertTrue(plain.contains("\r\nUser-Agent: libmillis/1\r\n"))
        let extra = h.request(hostHeader: "h", path: "/", userAgent: "libmillis/1",
                              extraHeaders: [("Origin", "https://a.example"), ("X-Route", "1"), ("X-Route", "2")])
        XCTAssertTrue(extra.hasSuffix("User-Agent: libmillis/1\r\nOrigin: https://a.example\r\nX-Route: 1\r\nX-Route: 2\r\n\r\n"), extra)
        let agent = h.request(hostHeader: "h", path: "/", userAgent: "libmillis/1", extraHeaders: [("user-agent", "kiosk/2")])
        XCTAssertFalse(agent.contains("libmillis/1"))
        XCTAssertTrue(agent.contains("\r\nuser-agent: kiosk/2\r\n"))
    }

    func testAnEmptyExtensionsOrProtocolHeaderSelectsNothing() throws {
        let h = Handshake(key: "dGhlIHNhbXBsZSBub25jZQ==")
        try h.validate(responseHead: response(["HTTP/1.1 101 OK", "Upgrade: websocket", "Connection: Upgrade",
                                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                                               "Sec-WebSocket-Extensions:", "Sec-WebSocket-Protocol: "]))
    }

    func testRandomKeysAre16BytesAndDiffer() {
        let random = RandomSource()
        let a = Handshake(random: random).key, b = Handshake(random: random).key
        XCTAssertEqual(a.count, 24)
        XCTAssertNotEqual(a, b)
    }

    private func response(_ lines: [String]) -> [UInt8] { Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8) }

    func testValidatesAGoodResponseCaseInsensitively() throws {
        let h = Handshake(key: "dGhlIHNhbXBsZSBub25jZQ==")
        try h.validate(responseHead: response(["HTTP/1.1 101 Switching Protocols", "upgrade: WebSocket",
                                               "connection: keep-alive, Upgrade", "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]))
    }

    func testRefusesBadResponsesWithMessagesThatSayWhy() {
        let h = Handshake(key: "dGhlIHNhbXBsZSBub25jZQ==")
        let good = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]
        let cases: [([String], String)] = [
            (["HTTP/1.1 403 Forbidden"], "HTTP 403 Forbidden"),
            (["HTTP/1.1 101 OK", "Connection: Upgrade", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="], "Upgrade: websocket"),
            (["HTTP/1.1 101 OK", "Upgrade: websocket", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="], "Connection: Upgrade"),
            (["HTTP/1.1 101 OK", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: wrong"], "does not match"),
            (["HTTP/1.1 101 OK"] + good + ["Sec-WebSocket-Extensions: permessage-deflate"], "extension"),
            // RFC 6455 §4.1: a subprotocol the client never asked for fails the connection.
            (["HTTP/1.1 101 OK"] + good + ["Sec-WebSocket-Protocol: chat"], "subprotocol 'chat'"),
            (["HTTP/1.1 101 OK"] + good + ["sec-websocket-protocol: a", "Sec-WebSocket-Protocol: b"], "subprotocol"),
            (["garbage"], "malformed HTTP status line"),
        ]
        for (lines, expected) in cases {
            XCTAssertThrowsError(try h.validate(responseHead: response(lines))) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(lines): \(error)")
            }
        }
    }

    func testFindsTheEndOfTheHead() {
        XCTAssertNil(Handshake.headEnd(in: Array("HTTP/1.1 101\r\nA: b\r\n".utf8)))
        XCTAssertEqual(Handshake.headEnd(in: Array("HTTP/1.1 101\r\n\r\nxyz".utf8)), 16)
    }
}
