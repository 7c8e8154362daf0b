import XCTest
@testable import MillisCore

final class FrameCodecTests: XCTestCase {
    private func decodeAll(_ bytes: [UInt8], max: Int = 1 << 20) throws -> [Frame] {
        var decoder = FrameDecoder(maxPayloadBytes: max)
        decoder.append(bytes)
        var frames: [Frame] = []
        while let frame = try decoder.next() { frames.append(frame) }
        return frames
    }

    /// RFC 6455 §5.7: a single-frame unmasked text message.
    func testRFCUnmaskedText() throws {
        XCTAssertEqual(try decodeAll([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
                       [Frame(fin: true, opcode: .text, payload: Array("Hello".utf8))])
    }

    /// RFC 6455 §5.7: a fragmented unmasked text message.
    func testRFCFragmentedText() throws {
        let frames = try decodeAll([0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f])
        XCTAssertEqual(frames, [Frame(fin: false, opcode: .text, payload: Array("Hel".utf8)),
                                Frame(fin: true, opcode: .continuation, payload: Array("lo".utf8))])
    }

    /// RFC 6455 §5.7: an unmasked ping, and 256-byte and 64 KiB binary messages.
    func testRFCPingAndExtendedLengths() throws {
        XCTAssertEqual(try decodeAll([0x89, 0x05] + Array("Hello".utf8)), [Frame(fin: true, opcode: .ping, payload: Array("Hello".utf8))])
        let f256 = try decodeAll([0x82, 0x7E, 0x01, 0x00] + [UInt8](repeating: 7, count: 256))
        XCTAssertEqual(f256.first?.payload.count, 256)
        let f64k = try decodeAll([0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0] + [UInt8](repeating: 9, count: 65536))
        XCTAssertEqual(f64k.first?.payload.count, 65536)
    }

    /// RFC 6455 §5.7: the masked "Hello" a client sends, with the RFC's key.
    func testEncoderProducesTheRFCMaskedFrame() {
        var out: [UInt8] = []
        FrameEncoder.encode(opcode: .text, payload: Array("Hello".utf8), key: (0x37, 0xfa, 0x21, 0x3d), into: &out)
        XCTAssertEqual(out, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58])
    }

    func testEncoderLengthForms() {
        for (count, header) in [(125, 2), (126, 4), (65535, 4), (65536, 10)] {
            var out: [UInt8] = []
            FrameEncoder.encode(opcode: .binary, payload: [UInt8](repeating: 1, count: count), key: (1, 2, 3, 4), into: &out)
            XCTAssertEqual(out.count, header + 4 + count, "\(count)")
            XCTAssertEqual(out[1] & 0x80, 0x80, "client frames are masked")
        }
    }

    func testDecoderWaitsForPartialInputByteByByte() throws {
        var decoder = FrameDecoder(maxPayloadBytes: 1024)
        let bytes: [UInt8] = [0x82, 0x7E, 0x00, 0x80] + [UInt8](repeating: 3, count: 128)
        for (i, byte) in bytes.enumerated() {
            decoder.append([byte])
            let frame = try decoder.next()
            XCTAssertEqual(frame == nil, i < bytes.count - 1)
        }
    }

    func testDecoderRefusesWhatAServerMustNotSend() {
        let cases: [([UInt8], WebSocketError.Kind, String)] = [
            ([0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0], .protocolError, "masked"),
            ([0xC1, 0x00], .protocolError, "reserved bits"),
            ([0x83, 0x00], .protocolError, "reserved opcode"),
            ([0x09, 0x00], .protocolError, "fragmented control"),
            ([0x89, 0x7E, 0x00, 0x7E] + [UInt8](repeating: 0, count: 126), .protocolError, "exceeds 125"),
            ([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], .protocolError, "most significant bit"),
            ([0x82, 0x7F, 0, 0, 0, 0, 0, 0x20, 0, 1], .messageTooBig, "exceeds the maximum"),
        ]
        for (bytes, kind, text) in cases {
            XCTAssertThrowsError(try decodeAll(bytes, max: 1 << 20)) { error in
                guard let error = error as? WebSocketError else { return XCTFail("\(error)") }
                XCTAssertEqual(error.kind, kind, text)
                XCTAssertTrue(error.message.contains(text), error.message)
            }
        }
    }
}
