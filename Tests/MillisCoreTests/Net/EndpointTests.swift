import XCTest
@testable import MillisCore

final class EndpointTests: XCTestCase {
    func testDefaultEndpoint() throws {
        let e = try Endpoint(Endpoint.defaultURL)
        XCTAssertTrue(e.secure)
        XCTAssertEqual(e.host, "api-west.millis.ai")
        XCTAssertEqual(e.port, 8080)
        XCTAssertEqual(e.path, "/millis")
        XCTAssertEqual(e.curlURL, "https://api-west.millis.ai:8080/millis")
        XCTAssertEqual(e.hostHeader, "api-west.millis.ai:8080")
    }

    func testDefaultsPortsPathsAndIPv6() throws {
        let plain = try Endpoint("WS://localhost")
        XCTAssertEqual(plain.port, 80)
        XCTAssertEqual(plain.path, "/")
        XCTAssertEqual(plain.hostHeader, "localhost")
        let v6 = try Endpoint("ws://[::1]:9000/a?b=c")
        XCTAssertEqual(v6.host, "[::1]")
        XCTAssertEqual(v6.port, 9000)
        XCTAssertEqual(v6.path, "/a?b=c")
        XCTAssertEqual(try Endpoint("wss://h?x=1").path, "/?x=1")
    }

    func testRefusesMalformedURLs() {
        let cases: [(String, String)] = [
            ("http://h/", "not a WebSocket URL"), ("ws://", "no host"), ("ws://:80/", "no host"),
            ("ws://h:0/", "invalid port"), ("ws://h:65536/", "invalid port"), ("ws://h:x/", "invalid port"),
            ("ws://h:/", "invalid port"), ("ws://h /", "spaces"), ("ws://u:p@h/", "user information"),
            ("ws://h/#f", "fragment"), ("ws://[::1/", "IPv6"), ("", "not a WebSocket URL"),
        ]
        for (url, expected) in cases {
            XCTAssertThrowsError(try Endpoint(url), url) { error in
                let error = error as! MillisError
                XCTAssertEqual(error.status, .invalidArgument)
                XCTAssertTrue(error.message.contains(expected), "\(url): \(error.message)")
            }
        }
    }
}
