/// The Millis protocol for one client, as a pure state machine: inputs (API calls,
/// transport events, messages, time) go in; `Action`s come out for its `Conversation`
/// to perform, in order: everything an input causes, the devices and the recording
/// included, is one of them. Time is passed in as monotonic nanoseconds, so tests can
/// script it.
///
/// In application audio mode there is no speaker, so agent audio counts as played in
/// real time from its arrival: the agent state returns to `idle` when it would have
/// finished playing, as the web client's does when its queue runs dry.
///
/// A ready conversation whose connection drops unexpectedly is resumed: the session
/// waits (exponential backoff with jitter), connects again and sends `initiate` with
/// `session_continuation` set to its session id, so the agent keeps its context.
public final class Session {
    public struct Settings: Sendable {
        /// Bytes per outgoing audio frame (PCM16 16 kHz mono).
        public var frameBytes: Int
        public var readyTimeoutNanoseconds: UInt64
        public var closeTimeoutNanoseconds: UInt64 = 2_000_000_000
        /// The endpoint, for messages ("no onready from ws://… within …").
        public var endpointDescription: String
        /// The public key, added to `initiate` (never logged).
        public var publicKey = ""
        /// Microphone audio between two keep-alive pings: the web client pings after
        /// every 1000 chunks of 128 samples, 8 s of PCM16 at 16 kHz (docs/protocol.md).
        public var pingEveryAudioBytes = Session.pingEveryAudioBytes
        /// Milliseconds since the Unix epoch: the ping's data, as the web client's
        /// `Date.now()` (tests fix it).
        public var wallClockMilliseconds: @Sendable () -> Int64 = { WallClock.epochMilliseconds() }
        /// How long the simulated playout may run dry before the agent counts as idle:
        /// the jitter a real playout buffer absorbs. Frames paced exactly in real time
        /// arrive just as the previous one "finishes"; without this the state would
        /// flicker between answer and idle on every frame. The device's playout has the
        /// same default, so an agent turns idle after the same gap in either mode.
        public var playoutGraceNanoseconds = Playout.defaultGraceNanoseconds
        /// A real speaker plays the agent's audio (device audio mode): the agent turns
        /// idle when the playback reports it ran dry (`playoutDrained`), not on a timer.
        public var externalPlayout = false
        /// Reconnection: attempts (0 = never), first delay, largest delay.
        public var reconnectAttempts = 5
        public var reconnectInitialDelayNanoseconds: UInt64 = 250_000_000
        public var reconnectMaxDelayNanoseconds: UInt64 = 8_000_000_000
        /// Bytes allowed to wait for the socket before audio frames are dropped.
        public var sendQueueLimitBytes = 512 * 1024
        /// Seed of the jitter source (tests fix it; clients draw it at random).
        public var jitterSeed: UInt64 = 0x9E37_79B9_7F4A_7C15

        public init(frameBytes: Int, readyTimeoutNanoseconds: UInt64, endpointDescription: String) {
            self.frameBytes = frameBytes
            self.readyTimeoutNanoseconds = readyTimeoutNanoseconds
            self.endpointDescription = endpointDescription
        }
    }

    /// 1000 web-client chunks of 128 samples, as PCM16 bytes.
    public static let pingEveryAudioBytes = 1000 * 128 * 2

    /// Pings remembered for their pong: a server answers the latest, maybe a little late.
    static let outstandingPingsKept = 4

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
        /// Tell the speaker: barge-in (drop everything queued and playing), pause, resume.
        case playout(PlayoutControl)
        /// Turn the microphone on (device audio). Before the application hears of the
        /// open: it streams from initiate on, as the web client's does from the socket's
        /// opening, so the user's first words while the agent gets ready count.
        case enableCapture
        /// Tell the application its streams are ready, right after the open: the agent's
        /// analyser (`analyzer`) and the microphone's description (`userAudioReady`).
        case announceStreams
        /// The agent's audio has ended: what the converter to the application's format
        /// still holds goes out before the idle state says so.
        case flushOutputConverter
        /// The conversation is over: join the audio threads and close the devices (the
        /// output file is complete once they are).
        case stopDevices
        /// The conversation is over for its timeline, before the application hears of
        /// the close: the close is noted (the recording's last event line, a turn it cuts
        /// short) and the recording completes (its failure is reported as an error).
        case completeRecording(code: Int, reason: String)
    }

    public enum PlayoutControl: Equatable, Sendable {
        case clear, pause, resume
    }

    /// Close codes after which a server may be asked again: going away, internal error,
    /// service restart, try again later, bad gateway (RFC 6455 §7.4.1, IANA registry).
    public static let retryableCloseCodes: Set<UInt16> = [1001, 1011, 1012, 1013, 1014]

    /// Where the transport is. During a resume it runs through connecting and open
    /// again, which the application sees as one `reconnecting` (`connectionState`).
    private var phase: ConnectionState = .idle
    /// The state applications see: `reconnecting` from the drop until the resumed
    /// session is ready (or the attempt is given up, or stopped).
    public var connectionState: ConnectionState {
        reconnectAttempt > 0 && (phase == .connecting || phase == .open) ? .reconnecting : phase
    }
    public private(set) var agentState: AgentState = .idle
    /// The session id of the last `onready` (kept after close, for continuation): as
    /// sent when a string, else the JSON text of what was sent ("12345"); "" when the
    /// server sent none.
    public private(set) var sessionId: String?
    /// The id as onready carried it, sent back as it came in `session_continuation`.
    private var sessionIdValue: JSONValue?
    public private(set) var stats = SessionStats()
    public private(set) var isMuted = false
    /// How many conversations have ended (each with its close event).
    public private(set) var finishedConversations = 0
    /// The reconnection under way (1 for the first attempt), 0 when none.
    public private(set) var reconnectAttempt = 0
    public let settings: Settings

    private var options: StartOptions?
    /// The current conversation reached `onready`: only such a one is resumed.
    private var wasReady = false
    private var sessionEnded = false
    private var readyDeadline: UInt64?
    private var closeDeadline: UInt64?
    private var reconnectDeadline: UInt64?
    private var pendingAudio: [UInt8] = []
    // Agent audio timing.
    private var answeringSince: UInt64?
    private var playoutEnd: UInt64 = 0
    private var pausedRemaining: UInt64 = 0
    /// Microphone audio sent since the last ping (or since `initiate`).
    private var audioBytesSincePing = 0
    /// The data of pings sent and not answered yet, oldest first.
    private var outstandingPings: [String] = []
    private var jitterState: UInt64

    public init(settings: Settings) {
        self.settings = settings
        jitterState = settings.jitterSeed == 0 ? 1 : settings.jitterSeed
    }

    /// The earliest time at which `tick` has something to do.
    public var nextDeadline: UInt64? {
        // Asked after every input: no temporary array.
        var deadline = Self.earlier(Self.earlier(readyDeadline, closeDeadline), reconnectDeadline)
        if agentState == .answer && !settings.externalPlayout {
            deadline = Self.earlier(deadline, playoutEnd + settings.playoutGraceNanoseconds)
        }
        return deadline
    }

    private static func earlier(_ a: UInt64?, _ b: UInt64?) -> UInt64? {
        guard let a else { return b }
        guard let b else { return a }
        return min(a, b)
    }

    // MARK: Inputs from the API

    public func start(_ options: StartOptions, now: UInt64) -> [Action] {
        guard phase == .idle else { return [] }
        self.options = options
        wasReady = false
        sessionEnded = false
        reconnectAttempt = 0
        // A new conversation continues nothing of the last one's.
        sessionIdValue = nil
        return beginConnecting(now: now)
    }

    public func stop(now: UInt64) -> [Action] {
        switch phase {
        case .idle, .closing:
            return []
        case .connecting, .reconnecting:
            return finish(code: 1000, reason: "stopped by the client", error: nil,
                          disconnect: phase == .connecting ? (nil, "stopped") : nil)
        case .open, .ready:
            phase = .closing
            readyDeadline = nil
            closeDeadline = now + settings.closeTimeoutNanoseconds
            return [.emit(.log(.info, "closing")), .closeHandshake(code: 1000, reason: "")]
        }
    }

    public func setMuted(_ muted: Bool) {
        isMuted = muted
    }

    /// The client is destroyed: the conversation ends at once, whatever its state, so
    /// that no deadline stays armed and no reconnection starts. Nothing is reported (the
    /// handler is gone), nothing is sent (the loop has closed the transport), and the
    /// destroy stops the devices and completes the files itself, whatever the state.
    public func abandon() -> [Action] {
        guard phase != .idle else { return [] }
        _ = finish(code: 1000, reason: "client destroyed", error: nil, disconnect: nil)
        return []
    }

    /// The transport's queue, as the loop sees it (reported in the stats).
    public func noteSendQueue(bytes: Int) {
        stats.sendQueueBytes = bytes
    }

    /// WebSocket pings the transport answered (or coalesced) since it last said.
    public func noteServerPings(received: Int, coalesced: Int) {
        stats.webSocketPingsReceived &+= received
        stats.webSocketPongsCoalesced &+= coalesced
    }

    /// Whether microphone audio is sent now: from `initiate` on, as the web client
    /// streams it from the socket's opening, before the server's onready.
    public var acceptsAudio: Bool { phase == .open || phase == .ready }

    /// Microphone audio (PCM16 16 kHz mono) from the application; cut into frames.
    /// `queuedBytes` is what already waits for the socket: past the limit, frames are
    /// dropped (a server that stops reading must not make memory grow).
    public func userAudio(_ pcm: [UInt8], now: UInt64, queuedBytes: Int = 0) -> [Action] {
        guard acceptsAudio else {
            stats.audioBytesDropped += pcm.count
            stats.audioFramesDropped += (pcm.count + settings.frameBytes - 1) / settings.frameBytes
            return []
        }
        // The usual call is one whole frame with nothing left over: it goes out as given,
        // without a copy.
        let source = pendingAudio.isEmpty ? pcm : pendingAudio + pcm
        pendingAudio = []
        var actions: [Action] = []
        let frameBytes = settings.frameBytes
        // A masked binary frame adds at most 14 bytes of header.
        let frameCost = frameBytes + 14
        var queued = queuedBytes
        var offset = 0
        while source.count - offset >= frameBytes {
            let start = offset
            offset += frameBytes
            if queued + frameCost > settings.sendQueueLimitBytes {
                stats.audioFramesDroppedBackpressure += 1
                continue
            }
            // Muted: the web client keeps the stream going with zeros so server timing holds.
            let frame = isMuted ? [UInt8](repeating: 0, count: frameBytes)
                : source.count == frameBytes ? source : Array(source[start..<offset])
            queued += frameCost
            stats.framesSent += 1
            stats.bytesSent += frameBytes
            actions.append(.sendBinary(frame))
            audioBytesSincePing += frameBytes
            if audioBytesSincePing >= settings.pingEveryAudioBytes {
                // The remainder carries over, so any frame size pings every 8 s on average.
                audioBytesSincePing -= settings.pingEveryAudioBytes
                actions.append(ping())
            }
        }
        if offset < source.count { pendingAudio = Array(source[offset...]) }
        return actions
    }

    /// A raw control message from the application.
    public func sendJSON(_ text: String) -> [Action] {
        guard phase == .open || phase == .ready else { return [] }
        stats.messagesSent += 1
        return [.sendText(text)]
    }

    // MARK: Inputs from the transport

    /// The WebSocket upgrade succeeded.
    public func transportOpened(now: UInt64) -> [Action] {
        guard phase == .connecting, var options else { return [] }
        phase = .open
        stats.messagesSent += 1
        var actions: [Action] = []
        if reconnectAttempt > 0, let sessionIdValue {
            options = options.continuing(sessionId: sessionIdValue)
        } else {
            actions += [.enableCapture, .emit(.open), .announceStreams]
        }
        actions.append(.emit(.log(.debug, "send \(options.redactedInitiateMessage)")))
        actions.append(.sendText(options.initiateMessage(publicKey: settings.publicKey)))
        return actions
    }

    public func receivedText(_ text: String, now: UInt64) -> [Action] {
        guard phase == .open || phase == .ready else { return [] }
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
        case .ready(let idValue, let payload):
            guard phase == .open else { return actions }
            phase = .ready
            readyDeadline = nil
            wasReady = true
            var id = ""
            // An empty id names nothing to continue, as a missing one.
            if let idValue, idValue != .string("") {
                id = idValue.stringValue ?? idValue.jsonText
                sessionIdValue = idValue
            } else if reconnectAttempt == 0 {
                actions.append(.emit(.log(.warn, "onready carried no session_id: a reconnection after a cut cannot continue this conversation and starts a new one")))
            }
            if reconnectAttempt > 0 {
                let resumed = id.isEmpty ? (sessionId ?? "") : id
                sessionId = resumed
                reconnectAttempt = 0
                stats.reconnects += 1
                actions.append(.emit(.log(.info, "reconnected to session \(resumed)")))
                actions.append(.emit(.reconnected(sessionId: resumed)))
            } else {
                sessionId = id
                actions.append(.emit(.ready(sessionId: id, payloadJSON: payload.jsonText)))
            }
        case .startAnswering:
            answeringSince = now
            setAgentState(.prepareAnswer, &actions)
        case .clear:
            playoutEnd = now
            pausedRemaining = 0
            actions.append(.playout(.clear))
            setAgentState(.idle, &actions)
        case .pause:
            if agentState != .pause {
                pausedRemaining = playoutEnd > now ? playoutEnd - now : 0
                actions.append(.playout(.pause))
            }
            setAgentState(.pause, &actions)
        case .unpause:
            if agentState == .pause {
                playoutEnd = now + pausedRemaining
                pausedRemaining = 0
                actions.append(.playout(.resume))
                setAgentState(.answer, &actions)
            }
        case .pong(let data):
            pong(data)
        case .transcript(let text, let isFinal):
            actions.append(.emit(.transcript(text, isFinal: isFinal)))
        case .responseText(let text, let isFinal):
            actions.append(.emit(.responseText(text, isFinal: isFinal)))
        case .function(let text, let name, let params):
            actions.append(.emit(.function(text: text, name: name, paramsJSON: params.jsonText)))
        case .sessionEnded:
            sessionEnded = true
            actions.append(.emit(.sessionEnded))
        case .other(let method):
            actions.append(.emit(.message(method: method, json: text)))
        case .invalid(let method, let problem):
            actions.append(.emit(.error(.badMessage, "server sent \(method) whose \(problem); it was not delivered as \(method) (onmessage has the raw message)")))
            actions.append(.emit(.message(method: method, json: text)))
        }
        return actions
    }

    /// Agent audio (a binary message).
    public func receivedBinary(_ bytes: [UInt8], now: UInt64) -> [Action] {
        guard phase == .open || phase == .ready else { return [] }
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
    public func transportClosed(code: UInt16, reason: String, now: UInt64) -> [Action] {
        guard phase != .idle && phase != .reconnecting else { return [] }
        let why = reason.isEmpty ? "" : ": \(reason)"
        if phase != .closing && Self.retryableCloseCodes.contains(code) && canResume {
            return beginReconnect(now: now, cause: "server closed the connection with code \(code)\(why)")
        }
        var error: (MillisStatus, String)?
        if phase != .closing && ![1000, 1001, 1005].contains(code) {
            error = (.serverClosed, "server closed the session with code \(code)\(why)")
        }
        return finish(code: Int(code), reason: reason, error: error, disconnect: nil)
    }

    /// The transport failed (connect error, TLS, handshake, protocol violation, lost
    /// connection). `closeCode` is what onclose reports (1006 unless a close frame was
    /// sent for the failure).
    public func transportFailed(_ status: MillisStatus, _ message: String, closeCode: Int, now: UInt64) -> [Action] {
        guard phase != .idle && phase != .reconnecting else { return [] }
        if phase == .closing && status == .connectionLost {
            // The server dropped TCP instead of answering our close: still a clean stop.
            return finish(code: 1000, reason: "", error: nil, disconnect: nil)
        }
        // A connection that dies, or an attempt to resume that fails, is tried again; a
        // server that breaks the protocol is not.
        let transient: Set<MillisStatus> = [.connectionLost, .connect, .tls, .handshake, .timeout]
        if phase != .closing && transient.contains(status) && canResume {
            return beginReconnect(now: now, cause: message)
        }
        return finish(code: closeCode, reason: message, error: (status, message), disconnect: nil)
    }

    // MARK: Time

    public func tick(now: UInt64) -> [Action] {
        var actions: [Action] = []
        if let deadline = readyDeadline, now >= deadline {
            let ms = settings.readyTimeoutNanoseconds / 1_000_000
            let message = "no onready from \(settings.endpointDescription) within \(ms) ms (the ready timeout); is the server up and the agent id right?"
            if canResume {
                return [.disconnect(code: 1000, reason: "ready timeout")] + beginReconnect(now: now, cause: message)
            }
            return finish(code: 1006, reason: "ready timeout", error: (.timeout, message), disconnect: (1000, "ready timeout"))
        }
        if let deadline = closeDeadline, now >= deadline {
            return finish(code: 1006, reason: "close handshake timed out", error: nil, disconnect: (nil, ""))
        }
        if let deadline = reconnectDeadline, now >= deadline {
            reconnectDeadline = nil
            return [.emit(.log(.info, "reconnecting (attempt \(reconnectAttempt))"))] + beginConnecting(now: now)
        }
        if agentState == .answer && !settings.externalPlayout && now >= playoutEnd + settings.playoutGraceNanoseconds {
            setAgentState(.idle, &actions)
        }
        return actions
    }

    /// Device audio: the speaker has played everything it was given.
    public func playoutDrained() -> [Action] {
        var actions: [Action] = []
        if agentState == .answer { setAgentState(.idle, &actions) }
        return actions
    }

    // MARK: Helpers

    /// A conversation that was ready, is not ending, and has reconnection enabled.
    private var canResume: Bool {
        wasReady && !sessionEnded && settings.reconnectAttempts > 0
    }

    private func beginConnecting(now: UInt64) -> [Action] {
        phase = .connecting
        // Each connection counts its audio from its own initiate, as a server would.
        audioBytesSincePing = 0
        outstandingPings.removeAll()
        readyDeadline = now + settings.readyTimeoutNanoseconds
        closeDeadline = nil
        pendingAudio.removeAll()
        answeringSince = nil
        return [.emit(.log(.info, "connecting to \(settings.endpointDescription)")), .connect]
    }

    private func beginReconnect(now: UInt64, cause: String) -> [Action] {
        let attempt = reconnectAttempt + 1
        guard attempt <= settings.reconnectAttempts else {
            let tries = settings.reconnectAttempts
            let message = "connection to \(settings.endpointDescription) lost and \(tries) reconnection attempt\(tries == 1 ? "" : "s") failed; last: \(cause)"
            return finish(code: 1006, reason: "connection lost", error: (.connectionLost, message), disconnect: nil)
        }
        reconnectAttempt = attempt
        phase = .reconnecting
        readyDeadline = nil
        closeDeadline = nil
        pendingAudio.removeAll()
        answeringSince = nil
        playoutEnd = 0
        pausedRemaining = 0
        let exponent = UInt64(min(attempt - 1, 30))
        let base = min(settings.reconnectMaxDelayNanoseconds, settings.reconnectInitialDelayNanoseconds << exponent)
        let delay = UInt64(Double(base) * (0.5 + 0.5 * nextUnitRandom()))
        reconnectDeadline = now + delay
        var actions: [Action] = [.emit(.log(.warn, "\(cause); reconnecting in \(delay / 1_000_000) ms (attempt \(attempt) of \(settings.reconnectAttempts))"))]
        // The resumed answer starts afresh: what the speaker still held is stale.
        actions.append(.playout(.clear))
        setAgentState(.idle, &actions)
        actions.append(.emit(.reconnecting(attempt: attempt, delayMilliseconds: Int(delay / 1_000_000))))
        return actions
    }

    /// xorshift64*: the jitter need not be cryptographic, only spread across clients.
    private func nextUnitRandom() -> Double {
        jitterState ^= jitterState >> 12
        jitterState ^= jitterState << 25
        jitterState ^= jitterState >> 27
        return Double((jitterState &* 0x2545_F491_4F6C_DD1D) >> 11) / Double(1 << 53)
    }

    private func setAgentState(_ state: AgentState, _ actions: inout [Action]) {
        guard state != agentState else { return }
        agentState = state
        if state == .idle { actions.append(.flushOutputConverter) }
        actions.append(.emit(.agentState(state)))
    }

    private func finish(code: Int, reason: String, error: (MillisStatus, String)?,
                                 disconnect: (code: UInt16?, reason: String)?) -> [Action] {
        var actions: [Action] = []
        if let disconnect {
            actions.append(.disconnect(code: disconnect.code, reason: disconnect.reason))
        }
        phase = .idle
        finishedConversations += 1
        reconnectAttempt = 0
        readyDeadline = nil
        closeDeadline = nil
        reconnectDeadline = nil
        pendingAudio.removeAll()
        answeringSince = nil
        playoutEnd = 0
        pausedRemaining = 0
        setAgentState(.idle, &actions)
        if let error {
            actions.append(.emit(.log(.error, error.1)))
            actions.append(.emit(.error(error.0, error.1)))
        }
        // The files are complete before the application hears of the close: the output
        // file (the devices close it), then the recording (it may hold their last audio).
        actions += [.stopDevices, .completeRecording(code: code, reason: reason), .emit(.close(code: code, reason: reason))]
        return actions
    }

    /// The keep-alive, as the web client writes it: `Date.now()` as a string.
    private func ping() -> Action {
        let data = String(settings.wallClockMilliseconds())
        if outstandingPings.count == Self.outstandingPingsKept { outstandingPings.removeFirst() }
        outstandingPings.append(data)
        stats.messagesSent += 1
        return .sendText("{\"method\":\"ping\",\"data\":\"\(data)\"}")
    }

    /// A pong counts only when it answers a ping of ours (its data is ours, so parsing
    /// it cannot overflow); the round trip is on the wall clock, as the web client's.
    private func pong(_ data: JSONValue) {
        let text: String
        switch data {
        case .string(let s): text = s
        case .number(let n): text = n
        default: text = ""
        }
        guard let index = outstandingPings.firstIndex(of: text), let sent = Int64(text) else {
            stats.pongsIgnored += 1
            return
        }
        // An answer to a ping also answers the ones before it.
        outstandingPings.removeFirst(index + 1)
        let elapsed = settings.wallClockMilliseconds() &- sent
        // A wall clock stepped back reads as no time, never as a negative round trip.
        stats.lastPingRTTMilliseconds = Double(max(0, elapsed))
    }
}
