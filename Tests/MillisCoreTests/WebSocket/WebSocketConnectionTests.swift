import XCTest
@testable import MillisCore

final class WebSocketConnectionTests: XCTestCase {
    /// A connection through its handshake, with its output drained.
    private func openConnection(max: Int = 1 << 20) -> WebSocketConnection {
        var ws = WebSocketConnection(hostHeader: "h", path: "/millis", maxMessageBytes: max)
        let request = String(decoding: takeOutput(&ws), as: UTF8.self)
        let key = request.split(separator: "\r\n").first { $0.hasPrefix("Sec-WebSocket-Key: ") }!.dropFirst(19)
        let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: \(Handshake.acceptValue(forKey: String(key)))\r\n\r\n"
        XCTAssertEqual(feed(&ws, Array(response.utf8)), [.opened])
        return ws
    }

    private func takeOutput(_ ws: inout WebSocketConnection) -> [UInt8] {
        var out: [UInt8] = []
        ws.drainOutput { out += $0; return $0.count }
        return out
    }

    private func feed(_ ws: inout WebSocketConnection, _ bytes: [UInt8]) -> [WebSocketConnection.Event] {
        bytes.withUnsafeBytes { ws.receive($0) }
    }

    /// Decodes client frames (masked) back, to check what was sent.
    private func clientFrames(_ bytes: [UInt8]) -> [(Opcode, [UInt8])] {
        var frames: [(Opcode, [UInt8])] = []
        var i = 0
        while i < bytes.count {
            let opcode = Opcode(rawValue: bytes[i] & 0x0F)!
            var length = Int(bytes[i + 1] & 0x7F)
            i += 2
            if length == 126 { length = Int(bytes[i]) << 8 | Int(bytes[i + 1]); i += 2 }
            let key = Array(bytes[i..<(i + 4)])
            i += 4
            frames.append((opcode, (0..<length).map { bytes[i + $0] ^ key[$0 & 3] }))
            i += length
        }
        return frames
    }

    func testHandshakeThenMessagesInOneRead() {
        var ws = WebSocketConnection(hostHeader: "h", path: "/", maxMessageBytes: 1024)
        let request = String(decoding: takeOutput(&ws), as: UTF8.self)
        let key = String(request.split(separator: "\r\n").first { $0.hasPrefix("Sec-WebSocket-Key: ") }!.dropFirst(19))
        let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(Handshake.acceptValue(forKey: key))\r\n\r\n"
        let events = feed(&ws, Array(head.utf8) + [0x81, 0x02, 0x68, 0x69, 0x82, 0x01, 0x07])
        XCTAssertEqual(events, [.opened, .text("hi"), .binary([7])])
        XCTAssertEqual(ws.state, .open)
    }

    func testNon101IsAHandshakeFailure() {
        var ws = WebSocketConnection(hostHeader: "h", path: "/", maxMessageBytes: 1024)
        _ = takeOutput(&ws)
        let events = feed(&ws, Array("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".utf8))
        guard case .failed(let error) = events.first else { return XCTFail("\(events)") }
        XCTAssertEqual(error.kind, .handshake)
        XCTAssertTrue(error.message.contains("403"))
        XCTAssertEqual(takeOutput(&ws), [], "no close frame before the socket is a WebSocket")
    }

    func testReassemblesFragmentsWithAPingInBetweenAndAnswersThePing() {
        var ws = openConnection()
        let events = feed(&ws, [0x01, 0x02, 0x68, 0x65, 0x89, 0x01, 0x50, 0x80, 0x02, 0x6c, 0x6f])
        XCTAssertEqual(events, [.text("helo")])
        let sent = clientFrames(takeOutput(&ws))
        XCTAssertEqual(sent.count, 1)
        XCTAssertEqual(sent[0].0, .pong)
        XCTAssertEqual(sent[0].1, [0x50])
    }

    func testInvalidUTF8FailsWith1007() {
        var ws = openConnection()
        let events = feed(&ws, [0x81, 0x02, 0xFF, 0xFE])
        guard case .failed(let error) = events.last else { return XCTFail("\(events)") }
        XCTAssertEqual(error.closeCode, 1007)
        let sent = clientFrames(takeOutput(&ws))
        XCTAssertEqual(sent.first?.0, .close)
        XCTAssertEqual(Array(sent.first!.1.prefix(2)), [0x03, 0xEF])
        XCTAssertEqual(ws.state, .closed)
    }

    func testOversizedFragmentedMessageFailsWith1009() {
        var ws = openConnection(max: 4)
        let events = feed(&ws, [0x02, 0x03, 1, 2, 3, 0x80, 0x02, 4, 5])
        guard case .failed(let error) = events.last else { return XCTFail("\(events)") }
        XCTAssertEqual(error.closeCode, 1009)
    }

    func testContinuationWithoutStartAndInterleavedStartAreProtocolErrors() {
        var a = openConnection()
        guard case .failed(let e1) = feed(&a, [0x80, 0x00]).last else { return XCTFail() }
        XCTAssertEqual(e1.closeCode, 1002)
        var b = openConnection()
        guard case .failed(let e2) = feed(&b, [0x01, 0x01, 0x41, 0x81, 0x01, 0x42]).last else { return XCTFail() }
        XCTAssertEqual(e2.closeCode, 1002)
    }

    func testServerCloseIsEchoedAndReported() {
        var ws = openConnection()
        let events = feed(&ws, [0x88, 0x05, 0x0F, 0xA4] + Array("bye".utf8))
        XCTAssertEqual(events, [.closed(code: 4004, reason: "bye")])
        let sent = clientFrames(takeOutput(&ws))
        XCTAssertEqual(sent.first?.0, .close)
        XCTAssertEqual(Array(sent.first!.1.prefix(2)), [0x0F, 0xA4])
    }

    func testClientCloseWaitsForTheServersCloseAndDropsDataMeanwhile() {
        var ws = openConnection()
        XCTAssertTrue(ws.close(code: 1000, reason: "done"))
        XCTAssertEqual(clientFrames(takeOutput(&ws)).first?.0, .close)
        XCTAssertEqual(ws.state, .closeSent)
        XCTAssertEqual(feed(&ws, [0x81, 0x01, 0x41, 0x88, 0x02, 0x03, 0xE8]), [.closed(code: 1000, reason: "")])
        XCTAssertEqual(takeOutput(&ws), [], "no second close frame")
    }

    func testInvalidCloseCodesAndOneBytePayloadsAreProtocolErrors() {
        for payload: [UInt8] in [[0x03], [0x03, 0xED], [0x03, 0xEE], [0x00, 0x10]] {
            var ws = openConnection()
            guard case .failed(let e) = feed(&ws, [0x88, UInt8(payload.count)] + payload).last else { return XCTFail("\(payload)") }
            XCTAssertEqual(e.closeCode, 1002)
        }
    }

    func testTransportEndWithoutCloseIsReported() {
        let ws = openConnection()
        XCTAssertEqual(ws.transportEnded()?.kind, .protocolError)
        var finished = openConnection()
        _ = feed(&finished, [0x88, 0x02, 0x03, 0xE8])
        XCTAssertNil(finished.transportEnded())
    }

    func testMasksDifferBetweenFrames() {
        var ws = openConnection()
        ws.sendText("a")
        ws.sendText("a")
        let out = takeOutput(&ws)
        XCTAssertEqual(out.count, 14)
        XCTAssertNotEqual(Array(out[2..<6]), Array(out[9..<13]))
    }

    // MARK: Control frames

    private func serverPing(_ payload: [UInt8]) -> [UInt8] { [0x89, UInt8(payload.count)] + payload }

    /// RFC 6455 §5.5.3: a flood of pings from a server that reads nothing costs one pong
    /// waiting to be written and one (the latest's) waiting behind it, not one per ping.
    func testAPingFloodCoalescesIntoBoundedPongs() {
        var ws = openConnection()
        let flood = (0..<10_000).flatMap { i in serverPing(Array("ping \(i) ".utf8) + [UInt8](repeating: 0x41, count: 100)) }
        XCTAssertEqual(feed(&ws, flood), [])
        XCTAssertEqual(ws.pingsReceived, 10_000)
        XCTAssertEqual(ws.pongsCoalesced, 9_998, "the first pong is queued, the last waits, the rest are replaced")
        XCTAssertLessThan(ws.pendingOutputCount, 200, "one pong queued")
        // The socket takes nothing for a while: still one pong.
        ws.drainOutput { _ in 0 }
        XCTAssertLessThan(ws.pendingOutputCount, 200)
        // Then it drains: the first pong, then the latest ping's, which is pending as soon
        // as the first is out (a network loop asks to write again only while output is
        // pending).
        let first = takeOutput(&ws)
        XCTAssertGreaterThan(ws.pendingOutputCount, 100, "the latest ping's pong is queued once the first is out")
        let frames = clientFrames(first) + clientFrames(takeOutput(&ws))
        XCTAssertEqual(frames.map { $0.0 }, [.pong, .pong])
        XCTAssertTrue(String(decoding: frames[0].1, as: UTF8.self).hasPrefix("ping 0 "))
        XCTAssertTrue(String(decoding: frames[1].1, as: UTF8.self).hasPrefix("ping 9999 "))
        XCTAssertEqual(takeOutput(&ws), [])
    }

    func testAPingIsAnsweredAtOnceWhenNothingWaits() {
        var ws = openConnection()
        for i in 0..<3 {
            XCTAssertEqual(feed(&ws, serverPing([UInt8(i)])), [])
            let frames = clientFrames(takeOutput(&ws))
            XCTAssertEqual(frames.count, 1)
            XCTAssertEqual(frames.first?.0, .pong)
            XCTAssertEqual(frames.first?.1, [UInt8(i)])
        }
        XCTAssertEqual(ws.pongsCoalesced, 0)
    }

    /// A pong waiting behind a half-written frame goes out ahead of data queued later.
    func testAWaitingPongGoesAheadOfLaterData() {
        var ws = openConnection()
        [UInt8](repeating: 7, count: 1000).withUnsafeBytes { ws.sendBinary($0) }
        XCTAssertEqual(feed(&ws, serverPing([1])), [], "first pong queued behind the audio")
        var written: [UInt8] = []
        ws.drainOutput { written += $0.prefix(10); return 10 }  // part of the audio frame is out
        XCTAssertEqual(feed(&ws, serverPing([2])), [])
        XCTAssertEqual(feed(&ws, serverPing([3])), [], "replaces the waiting one")
        written += takeOutput(&ws)  // the rest of the audio frame, then pong 1
        [UInt8](repeating: 8, count: 10).withUnsafeBytes { ws.sendBinary($0) }
        written += takeOutput(&ws)
        let frames = clientFrames(written)
        XCTAssertEqual(frames.map { $0.0 }, [.binary, .pong, .pong, .binary])
        XCTAssertEqual(frames[1].1, [1])
        XCTAssertEqual(frames[2].1, [3])
        XCTAssertEqual(ws.pongsCoalesced, 1)
    }

    /// Nothing follows our close frame, not even a pong that was waiting.
    func testAWaitingPongIsDroppedWhenWeClose() {
        var ws = openConnection()
        XCTAssertEqual(feed(&ws, serverPing([1]) + serverPing([2])), [], "pong 1 queued, pong 2 waits")
        XCTAssertTrue(ws.close(code: 1000, reason: ""))
        let frames = clientFrames(takeOutput(&ws) + takeOutput(&ws))
        XCTAssertEqual(frames.map { $0.0 }, [.pong, .close])
    }
}
