/// The Millis protocol for one client, as a pure state machine: inputs (API calls,
/// transport events, messages, time) go in; `Action`s come out for the network loop
/// to perform. Time is passed in as monotonic nanoseconds, so tests can script it.
///
/// In application audio mode there is no speaker, so agent audio counts as played in
/// real time from its arrival: the agent state returns to `idle` when it would have
/// finished playing, as the web client's does when its queue runs dry.
public struct Session {
    public struct Settings: Sendable {
        /// Bytes per outgoing audio frame (PCM16 16 kHz mono).
        public var frameBytes: Int
        public var readyTimeoutNanoseconds: UInt64
        public var closeTimeoutNanoseconds: UInt64 = 2_000_000_000
        /// The endpoint, for messages ("no onready from ws://… within …").
        public var endpointDescription: String
        /// Audio frames between two keep-alive pings (PROTOCOL.md: 1000).
        public var framesPerPing = 1000
        /// How long the simulated playout may run dry before the agent counts as idle:
        /// the jitter a real playout buffer absorbs. Frames paced exactly in real time
        /// arrive just as the previous one "finishes"; without this the state would
        /// flicker between answer and idle on every frame.
        public var playoutGraceNanoseconds: UInt64 = 80_000_000

        public init(frameBytes: Int, readyTimeoutNanoseconds: UInt64, endpointDescription: String) {
            self.frameBytes = frameBytes
            self.readyTimeoutNanoseconds = readyTimeoutNanoseconds
            self.endpointDescription = endpointDescription
        }
    }

    public enum Action: Equatable, Sendable {
        /// Open the transport (TCP, TLS, WebSocket upgrade) to the endpoint.
        case connect
        case sendText(String)
        case sendBinary([UInt8])
        /// Send a close frame and wait for the server's answer (`transportClosed`).
        case closeHandshake(code: UInt16, reason: String)
        /// Tear the transport down now, sending a close frame first when `code` is given;
        /// the transport reports nothing more.
        case disconnect(code: UInt16?, reason: String)
        case emit(SessionEvent)
    }

    public private(set) var connectionState: ConnectionState = .idle
    public private(set) var agentState: AgentState = .idle
    /// The session id of the last `onready` (kept after close, for continuation).
    public private(set) var sessionId: String?
    public private(set) var stats = SessionStats()
    public private(set) var isMuted = false
    /// How many conversations have ended (each with its close event).
    public private(set) var finishedConversations = 0
    public let settings: Settings

    private var initiate = ""
    private var redactedInitiate = ""
    private var readyDeadline: UInt64?
    private var closeDeadline: UInt64?
    private var pendingAudio: [UInt8] = []
    // Agent audio timing.
    private var answeringSince: UInt64?
    private var playoutEnd: UInt64 = 0
    private var pausedRemaining: UInt64 = 0
    private var framesSinceStart = 0

    public init(settings: Settings) {
        self.settings = settings
    }

    /// The earliest time at which `tick` has something to do.
    public var nextDeadline: UInt64? {
        var deadline = [readyDeadline, closeDeadline].compactMap { $0 }.min()
        if agentState == .answer {
            let idleAt = playoutEnd + settings.playoutGraceNanoseconds
            deadline = min(deadline ?? idleAt, idleAt)
        }
        return deadline
    }

    // MARK: Inputs from the API

    public mutating func start(initiate: String, redacted: String, now: UInt64) -> [Action] {
        guard connectionState == .idle else { return [] }
        self.initiate = initiate
        self.redactedInitiate = redacted
        connectionState = .connecting
        readyDeadline = now + settings.readyTimeoutNanoseconds
        closeDeadline = nil
        pendingAudio.removeAll()
        answeringSince = nil
        framesSinceStart = 0
        return [.emit(.log(.info, "connecting to \(settings.endpointDescription)")), .connect]
    }

    public mutating func stop(now: UInt64) -> [Action] {
        switch connectionState {
        case .idle, .closing:
            return []
        case .connecting:
            return finish(code: 1000, reason: "stopped by the client", error: nil, disconnect: (nil, "stopped"))
        case .open, .ready:
            connectionState = .closing
            readyDeadline = nil
            closeDeadline = now + settings.closeTimeoutNanoseconds
            return [.emit(.log(.info, "closing")), .closeHandshake(code: 1000, reason: "")]
        }
    }

    public mutating func setMuted(_ muted: Bool) {
        isMuted = muted
    }

    /// Microphone audio (PCM16 16 kHz mono) from the application; cut into frames.
    public mutating func userAudio(_ pcm: [UInt8], now: UInt64) -> [Action] {
        guard connectionState == .ready else {
            stats.audioBytesDropped += pcm.count
            stats.audioFramesDropped += (pcm.count + settings.frameBytes - 1) / settings.frameBytes
            return []
        }
        pendingAudio += pcm
        var actions: [Action] = []
        let frameBytes = settings.frameBytes
        var offset = 0
        while pendingAudio.count - offset >= frameBytes {
            var frame = Array(pendingAudio[offset..<(offset + frameBytes)])
            offset += frameBytes
            if isMuted {
                // The web client keeps the stream going with zeros so server timing holds.
                frame = [UInt8](repeating: 0, count: frameBytes)
            }
            stats.framesSent += 1
            stats.bytesSent += frameBytes
            actions.append(.sendBinary(frame))
            framesSinceStart += 1
            if framesSinceStart % settings.framesPerPing == 0 {
                let ms = Double(now) / 1_000_000
                stats.messagesSent += 1
                actions.append(.sendText("{\"method\":\"ping\",\"data\":\"\(Self.format(ms))\"}"))
            }
        }
        pendingAudio.removeFirst(offset)
        return actions
    }

    /// A raw control message from the application.
    public mutating func sendJSON(_ text: String) -> [Action] {
        guard connectionState == .open || connectionState == .ready else { return [] }
        stats.messagesSent += 1
        return [.sendText(text)]
    }

    // MARK: Inputs from the transport

    /// The WebSocket upgrade succeeded.
    public mutating func transportOpened(now: UInt64) -> [Action] {
        guard connectionState == .connecting else { return [] }
        connectionState = .open
        stats.messagesSent += 1
        return [.emit(.open), .emit(.log(.debug, "send \(redactedInitiate)")), .sendText(initiate)]
    }

    public mutating func receivedText(_ text: String, now: UInt64) -> [Action] {
        guard connectionState == .open || connectionState == .ready else { return [] }
        stats.messagesReceived += 1
        var actions: [Action] = [.emit(.log(.debug, "recv \(text.prefix(500))"))]
        let message: ServerMessage
        do {
            message = try ServerMessage.parse(text)
        } catch {
            actions.append(.emit(.error(error.status, error.message)))
            return actions
        }
        switch message {
        case .ready(let id, let payload):
            guard connectionState == .open else { return actions }
            connectionState = .ready
            readyDeadline = nil
            sessionId = id
            actions.append(.emit(.ready(sessionId: id, payloadJSON: payload.jsonText)))
        case .startAnswering:
            answeringSince = now
            setAgentState(.prepareAnswer, &actions)
        case .clear:
            playoutEnd = now
            pausedRemaining = 0
            setAgentState(.idle, &actions)
        case .pause:
            if agentState != .pause {
                pausedRemaining = playoutEnd > now ? playoutEnd - now : 0
            }
            setAgentState(.pause, &actions)
        case .unpause:
            if agentState == .pause {
                playoutEnd = now + pausedRemaining
                pausedRemaining = 0
                setAgentState(.answer, &actions)
            }
        case .pong(let data):
            if let sent = data.doubleValue {
                stats.lastPingRTTMilliseconds = Double(now) / 1_000_000 - sent
            }
        case .transcript(let text, let isFinal):
            actions.append(.emit(.transcript(text, isFinal: isFinal)))
        case .responseText(let text, let isFinal):
            actions.append(.emit(.responseText(text, isFinal: isFinal)))
        case .function(let text, let name, let params):
            actions.append(.emit(.function(text: text, name: name, paramsJSON: params.jsonText)))
        case .sessionEnded:
            actions.append(.emit(.sessionEnded))
        case .other(let method):
            actions.append(.emit(.message(method: method, json: text)))
        }
        return actions
    }

    /// Agent audio (a binary message).
    public mutating func receivedBinary(_ bytes: [UInt8], now: UInt64) -> [Action] {
        guard connectionState == .open || connectionState == .ready else { return [] }
        var actions: [Action] = []
        var pcm = bytes
        if pcm.count % 2 != 0 {
            actions.append(.emit(.error(.badMessage, "server sent an audio frame of \(pcm.count) bytes; PCM16 needs an even count, so the last byte was dropped")))
            pcm.removeLast()
        }
        stats.framesReceived += 1
        stats.bytesReceived += pcm.count
        if let since = answeringSince {
            let latency = Double(now - min(now, since)) / 1_000_000
            answeringSince = nil
            stats.lastLatencyMilliseconds = latency
            actions.append(.emit(.latency(milliseconds: latency)))
        }
        let duration = UInt64(pcm.count / 2) * 1_000_000_000 / 16_000
        if agentState == .pause {
            pausedRemaining += duration
        } else {
            playoutEnd = max(playoutEnd, now) + duration
            setAgentState(.answer, &actions)
        }
        if !pcm.isEmpty {
            actions.append(.emit(.audio(pcm)))
        }
        return actions
    }

    /// The server completed a close (its close frame, or its answer to ours).
    public mutating func transportClosed(code: UInt16, reason: String) -> [Action] {
        guard connectionState != .idle else { return [] }
        var error: (MillisStatus, String)?
        if connectionState != .closing && ![1000, 1001, 1005].contains(code) {
            let why = reason.isEmpty ? "" : ": \(reason)"
            error = (.serverClosed, "server closed the session with code \(code)\(why)")
        }
        return finish(code: Int(code), reason: reason, error: error, disconnect: nil)
    }

    /// The transport failed (connect error, TLS, handshake, protocol violation, lost
    /// connection). `closeCode` is what onclose reports (1006 unless a close frame was
    /// sent for the failure).
    public mutating func transportFailed(_ status: MillisStatus, _ message: String, closeCode: Int) -> [Action] {
        guard connectionState != .idle else { return [] }
        if connectionState == .closing && status == .connectionLost {
            // The server dropped TCP instead of answering our close: still a clean stop.
            return finish(code: 1000, reason: "", error: nil, disconnect: nil)
        }
        return finish(code: closeCode, reason: message, error: (status, message), disconnect: nil)
    }

    // MARK: Time

    public mutating func tick(now: UInt64) -> [Action] {
        var actions: [Action] = []
        if let deadline = readyDeadline, now >= deadline {
            let ms = settings.readyTimeoutNanoseconds / 1_000_000
            let message = "no onready from \(settings.endpointDescription) within \(ms) ms (the ready timeout); is the server up and the agent id right?"
            return finish(code: 1006, reason: "ready timeout", error: (.timeout, message), disconnect: (1000, "ready timeout"))
        }
        if let deadline = closeDeadline, now >= deadline {
            return finish(code: 1006, reason: "close handshake timed out", error: nil, disconnect: (nil, ""))
        }
        if agentState == .answer && now >= playoutEnd + settings.playoutGraceNanoseconds {
            setAgentState(.idle, &actions)
        }
        return actions
    }

    // MARK: Helpers

    private mutating func setAgentState(_ state: AgentState, _ actions: inout [Action]) {
        guard state != agentState else { return }
        agentState = state
        actions.append(.emit(.agentState(state)))
    }

    private mutating func finish(code: Int, reason: String, error: (MillisStatus, String)?,
                                 disconnect: (code: UInt16?, reason: String)?) -> [Action] {
        var actions: [Action] = []
        if let disconnect {
            actions.append(.disconnect(code: disconnect.code, reason: disconnect.reason))
        }
        connectionState = .idle
        finishedConversations += 1
        readyDeadline = nil
        closeDeadline = nil
        pendingAudio.removeAll()
        answeringSince = nil
        playoutEnd = 0
        pausedRemaining = 0
        setAgentState(.idle, &actions)
        if let error {
            actions.append(.emit(.log(.error, error.1)))
            actions.append(.emit(.error(error.0, error.1)))
        }
        actions.append(.emit(.close(code: code, reason: reason)))
        return actions
    }

    static func format(_ ms: Double) -> String {
        let micros = Int64((ms * 1000).rounded())
        let fraction = String(micros % 1000)
        return "\(micros / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
