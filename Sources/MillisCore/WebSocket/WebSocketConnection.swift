/// The client end of one WebSocket (RFC 6455) as a pure state machine: bytes from the
/// network go in through `receive`, messages come out as events, and everything to be
/// written collects in `output` for the I/O layer to send. No I/O happens here.
public final class WebSocketConnection {
    public enum State: Equatable, Sendable {
        /// The upgrade request is out; waiting for the 101 response.
        case handshaking
        case open
        /// We sent a close frame and wait for the server's.
        case closeSent
        /// Closed, failed or finished: nothing more is accepted.
        case closed
    }

    public enum Event: Equatable, Sendable {
        /// The upgrade succeeded.
        case opened
        case text(String)
        case binary([UInt8])
        /// The server closed (code 1005 when its close frame had no code). If we had not
        /// sent a close ourselves, the echo is already queued in `output`.
        case closed(code: UInt16, reason: String)
        /// The server broke the protocol. A close frame with the matching code is queued
        /// (when the socket was open); the connection is over.
        case failed(WebSocketError)
    }

    public private(set) var state: State = .handshaking
    private let handshake: Handshake
    private var responseHead: [UInt8] = []
    private var decoder: FrameDecoder
    private var fragmentOpcode: Opcode?
    private var fragments: [UInt8] = []
    private let random: RandomSource
    private var outputBuffer: [UInt8] = []
    private var outputIndex = 0
    public let maxMessageBytes: Int
    /// Pings from the server, and those answered only by the pong of a later one.
    public private(set) var pingsReceived = 0
    public private(set) var pongsCoalesced = 0
    /// Pong coalescing (RFC 6455 §5.5.3 lets a client answer only the latest ping): at
    /// most one pong waits in the output unwritten, and at most one more waits here to
    /// follow it, the latest ping's; a ping flood from a server that reads nothing costs
    /// two small frames, not one per ping.
    private var pendingPong: [UInt8]?
    /// Output bytes still to be written up to the end of the queued pong; 0 once it is out.
    private var pongUnwrittenThrough = 0

    /// Starts a connection: the upgrade request is queued in `output` at once. `random`
    /// may be shared by the connections of one thread.
    public init(hostHeader: String, path: String, maxMessageBytes: Int, userAgent: String = "libmillis",
                extraHeaders: [(name: String, value: String)] = [], random: RandomSource = RandomSource()) {
        self.handshake = Handshake(random: random)
        self.random = random
        self.maxMessageBytes = maxMessageBytes
        self.decoder = FrameDecoder(maxPayloadBytes: maxMessageBytes)
        outputBuffer.append(contentsOf: Array(handshake.request(hostHeader: hostHeader, path: path, userAgent: userAgent, extraHeaders: extraHeaders).utf8))
    }

    // MARK: Output

    /// Bytes waiting to be written.
    public var pendingOutputCount: Int { outputBuffer.count - outputIndex }

    /// Gives the pending output to `write`, which returns how many bytes it wrote.
    public func drainOutput(_ write: (UnsafeRawBufferPointer) -> Int) {
        queuePendingPong()
        guard pendingOutputCount > 0 else { return }
        let written = outputBuffer.withUnsafeBytes { all in
            write(UnsafeRawBufferPointer(rebasing: all[outputIndex...]))
        }
        let moved = min(max(0, written), pendingOutputCount)
        outputIndex += moved
        pongUnwrittenThrough = max(0, pongUnwrittenThrough - moved)
        if outputIndex == outputBuffer.count {
            // Released, not kept: thousands of idle connections would each hold their
            // largest burst (a malloc per frame is the cheaper side of that trade).
            outputBuffer.removeAll()
            outputIndex = 0
        } else if outputIndex > 65536 {
            outputBuffer.removeFirst(outputIndex)
            outputIndex = 0
        }
        // A pong that waited for this write is queued now: the caller sees output
        // pending and keeps asking to write, instead of leaving it until we next send.
        queuePendingPong()
    }

    // MARK: Sending

    /// The waiting pong goes next, ahead of data queued after it, once the one before
    /// it is out.
    private func queuePendingPong() {
        // Nothing follows a close frame (RFC 6455 §5.5.1).
        guard pongUnwrittenThrough == 0, state == .open, let payload = pendingPong else { return }
        pendingPong = nil
        FrameEncoder.encode(opcode: .pong, payload: payload, key: random.next4(), into: &outputBuffer)
        pongUnwrittenThrough = pendingOutputCount
    }

    /// Queues a text message. Ignored unless the connection is open.
    public func sendText(_ text: String) {
        guard state == .open else { return }
        queuePendingPong()
        var copy = text
        copy.withUTF8 { utf8 in
            FrameEncoder.encode(opcode: .text, payload: UnsafeRawBufferPointer(utf8), key: random.next4(), into: &outputBuffer)
        }
    }

    /// Queues a binary message. Ignored unless the connection is open.
    public func sendBinary(_ payload: UnsafeRawBufferPointer) {
        guard state == .open else { return }
        queuePendingPong()
        FrameEncoder.encode(opcode: .binary, payload: payload, key: random.next4(), into: &outputBuffer)
    }

    /// Queues a ping with `payload` (at most 125 bytes).
    public func sendPing(_ payload: [UInt8] = []) {
        guard state == .open else { return }
        FrameEncoder.encode(opcode: .ping, payload: Array(payload.prefix(125)), key: random.next4(), into: &outputBuffer)
    }

    /// Starts the closing handshake. Returns false when there is no open socket to close
    /// (then the caller simply drops the connection).
    @discardableResult
    public func close(code: UInt16 = 1000, reason: String = "") -> Bool {
        guard state == .open else {
            if state == .handshaking { state = .closed }
            return false
        }
        queueClose(code: code, reason: reason)
        state = .closeSent
        return true
    }

    private func queueClose(code: UInt16, reason: String) {
        pendingPong = nil
        var payload = [UInt8(code >> 8), UInt8(code & 0xFF)]
        // A control payload is at most 125 bytes; cut the reason on a character boundary.
        var reasonBytes: [UInt8] = []
        for ch in reason {
            let utf8 = Array(String(ch).utf8)
            if reasonBytes.count + utf8.count > 123 { break }
            reasonBytes += utf8
        }
        payload += reasonBytes
        FrameEncoder.encode(opcode: .close, payload: payload, key: random.next4(), into: &outputBuffer)
    }

    // MARK: Receiving

    /// Feeds bytes read from the network; returns what they meant, in order.
    public func receive(_ bytes: UnsafeRawBufferPointer) -> [Event] {
        var events: [Event] = []
        switch state {
        case .closed:
            return events
        case .handshaking:
            responseHead.append(contentsOf: bytes)
            guard let end = Handshake.headEnd(in: responseHead) else {
                if responseHead.count > Handshake.maxResponseHeadBytes {
                    return fail(WebSocketError(.handshake, "upgrade response head exceeds \(Handshake.maxResponseHeadBytes) bytes"), into: &events)
                }
                return events
            }
            do {
                try handshake.validate(responseHead: Array(responseHead[..<end]))
            } catch {
                return fail(error, into: &events)
            }
            state = .open
            events.append(.opened)
            let rest = Array(responseHead[end...])
            responseHead = []
            decoder.append(rest)
        case .open, .closeSent:
            decoder.lend(bytes)
        }
        defer { decoder.takeBack() }
        while state == .open || state == .closeSent {
            let frame: Frame?
            do {
                frame = try decoder.next()
            } catch {
                return fail(error, into: &events)
            }
            guard let frame else { break }
            handle(frame, into: &events)
        }
        return events
    }

    /// The transport ended. Returns the failure to report when that was not the end of a
    /// closing handshake.
    public func transportEnded() -> WebSocketError? {
        defer { state = .closed }
        switch state {
        case .closed: return nil
        case .handshaking: return WebSocketError(.handshake, "connection closed during the WebSocket upgrade")
        case .open, .closeSent: return WebSocketError(.protocolError, "connection closed without a close frame")
        }
    }

    private func handle(_ frame: Frame, into events: inout [Event]) {
        switch frame.opcode {
        case .ping:
            guard state == .open else { return }
            pingsReceived &+= 1
            if pendingPong != nil { pongsCoalesced &+= 1 }
            pendingPong = frame.payload
            queuePendingPong()
        case .pong:
            break
        case .close:
            handleClose(frame.payload, into: &events)
        case .text, .binary:
            guard fragmentOpcode == nil else {
                _ = fail(WebSocketError(.protocolError, "server started a new message inside a fragmented one"), into: &events)
                return
            }
            if frame.fin {
                deliver(frame.opcode, frame.payload, into: &events)
            } else {
                fragmentOpcode = frame.opcode
                fragments = frame.payload
            }
        case .continuation:
            guard let opcode = fragmentOpcode else {
                _ = fail(WebSocketError(.protocolError, "server sent a continuation frame with no message to continue"), into: &events)
                return
            }
            if fragments.count + frame.payload.count > maxMessageBytes {
                _ = fail(WebSocketError(.messageTooBig, "server message exceeds the maximum message size of \(maxMessageBytes) bytes"), into: &events)
                return
            }
            fragments += frame.payload
            if frame.fin {
                let payload = fragments
                fragments = []
                fragmentOpcode = nil
                deliver(opcode, payload, into: &events)
            }
        }
    }

    private func deliver(_ opcode: Opcode, _ payload: [UInt8], into events: inout [Event]) {
        // After our close, data is discarded (RFC 6455 §1.4).
        guard state == .open else { return }
        if opcode == .binary {
            events.append(.binary(payload))
            return
        }
        guard let text = String(validating: payload, as: UTF8.self) else {
            _ = fail(WebSocketError(.invalidUTF8, "server sent a text message that is not valid UTF-8"), into: &events)
            return
        }
        events.append(.text(text))
    }

    private func handleClose(_ payload: [UInt8], into events: inout [Event]) {
        var code: UInt16 = 1005
        var reason = ""
        if payload.count == 1 {
            _ = fail(WebSocketError(.protocolError, "server close frame has a 1-byte payload"), into: &events)
            return
        }
        if payload.count >= 2 {
            code = UInt16(payload[0]) << 8 | UInt16(payload[1])
            guard Self.isValidReceivedCloseCode(code) else {
                _ = fail(WebSocketError(.protocolError, "server close frame has invalid code \(code)"), into: &events)
                return
            }
            guard let text = String(validating: payload[2...], as: UTF8.self) else {
                _ = fail(WebSocketError(.invalidUTF8, "server close reason is not valid UTF-8"), into: &events)
                return
            }
            reason = text
        }
        if state == .open {
            // Echo the code, as RFC 6455 §5.5.1 suggests; 1005 may not be sent.
            queueClose(code: code == 1005 ? 1000 : code, reason: "")
        }
        state = .closed
        events.append(.closed(code: code, reason: reason))
    }

    /// RFC 6455 §7.4: codes a peer may put on the wire.
    static func isValidReceivedCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014: return true
        case 3000...4999: return true
        default: return false
        }
    }

    private func fail(_ error: WebSocketError, into events: inout [Event]) -> [Event] {
        if state == .open {
            queueClose(code: error.closeCode, reason: String(error.message.prefix(100)))
        }
        state = .closed
        events.append(.failed(error))
        return events
    }
}
