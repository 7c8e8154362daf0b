// The fuzz targets' bodies, shared by the libFuzzer builds (Fuzz/*.swift, compiled into
// the MillisCore module itself with -D MILLIS_FUZZ_BUILD) and by the regression tests
// (FuzzRegressionTests.swift), which replay every input under Fuzz/regressions through
// exactly these functions. Invariants are checked with `precondition`: a violation is a
// crash, which is what the fuzzer reports.
#if !MILLIS_FUZZ_BUILD
@testable import MillisCore
#endif

enum FuzzHarness {
    /// The fuzz targets by name (the folder names under Fuzz/corpus and Fuzz/regressions).
    static let targetNames = ["websocket", "server_message"]

    static func run(target: String, _ data: [UInt8]) {
        switch target {
        case "websocket": webSocket(data)
        case "server_message": serverMessage(data)
        default: preconditionFailure("no fuzz target named \(target)")
        }
    }

    // MARK: websocket

    /// In a raw-handshake input, this text is replaced by the Sec-WebSocket-Accept value
    /// that matches the connection's random key, so the fuzzer can reach a valid 101.
    static let acceptPlaceholder = Array("@@ACCEPT@@".utf8)

    /// Input layout: byte 0 = flags, byte 1 = chunking, the rest = bytes from the server.
    ///   flags bit 0: the rest is the whole server stream, handshake response included
    ///                (with @@ACCEPT@@ replaced); otherwise a valid 101 is sent first.
    ///   flags bits 1-2: maxMessageBytes = 64, 1024, 65536 or 1 MiB.
    ///   flags bit 3: send a ping (and a text message) after every chunk.
    ///   flags bit 4: close from our side at the end.
    ///   chunking: 0 = one read; n = reads of 1...n+1 bytes, sizes from a PRNG seeded by n.
    /// The same bytes (after the flags) also go straight into a FrameDecoder, once whole
    /// and once in the same chunks; both runs must decode the same frames and fail alike.
    static func webSocket(_ data: [UInt8]) {
        guard data.count >= 2 else { return }
        let flags = data[0], chunking = data[1]
        let body = Array(data[2...])
        let maxMessageBytes = [64, 1024, 65536, 1 << 20][Int(flags >> 1) & 3]
        frameDecoderDifferential(body, chunking: chunking, maxPayloadBytes: maxMessageBytes)

        let ws = WebSocketConnection(hostHeader: "fuzz.example:8765", path: "/millis", maxMessageBytes: maxMessageBytes)
        var request: [UInt8] = []
        ws.drainOutput { request += $0; return $0.count }
        let key = headerValue("Sec-WebSocket-Key", in: request)
        precondition(key != nil, "the upgrade request has no Sec-WebSocket-Key")
        let accept = Array(Handshake.acceptValue(forKey: key!).utf8)

        var stream: [UInt8]
        if flags & 1 != 0 {
            stream = replacing(acceptPlaceholder, with: accept, in: body)
        } else {
            stream = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ".utf8)
                + accept + Array("\r\n\r\n".utf8) + body
        }

        var rng = FuzzRandom(seed: UInt64(chunking) &+ 0x9E37_79B9_7F4A_7C15)
        var opened = false, ended = false
        var fed = 0, ourBytes = 0, drained = 0
        var sent: [UInt8] = []
        var offset = 0
        while offset < stream.count {
            let n = chunking == 0 ? stream.count - offset : min(stream.count - offset, 1 + rng.below(Int(chunking) + 1))
            let stateBefore = ws.state
            let events = stream[offset..<(offset + n)].withUnsafeBytes { ws.receive($0) }
            offset += n
            fed += n
            if stateBefore == .closed { precondition(events.isEmpty, "events after the connection closed: \(events)") }
            for (i, event) in events.enumerated() {
                precondition(!ended, "event \(event) after the connection ended")
                switch event {
                case .opened:
                    precondition(!opened && i == 0, "opened twice or not first")
                    opened = true
                case .text(let text):
                    precondition(opened, "text before open")
                    precondition(text.utf8.count <= maxMessageBytes, "text of \(text.utf8.count) bytes > \(maxMessageBytes)")
                case .binary(let bytes):
                    precondition(opened, "binary before open")
                    precondition(bytes.count <= maxMessageBytes, "binary of \(bytes.count) bytes > \(maxMessageBytes)")
                case .closed(let code, _):
                    precondition(opened, "closed before open")
                    precondition(code == 1005 || WebSocketConnection.isValidReceivedCloseCode(code), "close code \(code)")
                    ended = true
                case .failed:
                    ended = true
                }
            }
            if ended { precondition(ws.state == .closed, "ended but state \(ws.state)") }
            if flags & 8 != 0 {
                let before = ws.pendingOutputCount
                ws.sendPing([1, 2, 3])
                ws.sendText("fuzz")
                ourBytes += ws.pendingOutputCount - before
            }
            // Pongs are the only output the server can cause: at most 3 bytes out per
            // byte in (an empty ping is 2 bytes, its pong 6), plus one close frame.
            precondition(ws.pendingOutputCount + drained <= 3 * fed + ourBytes + 256,
                         "output grew to \(ws.pendingOutputCount + drained) bytes for \(fed) bytes in")
            // Partial writes exercise the output buffer's compaction.
            let budget = rng.below(2) == 0 ? Int.max : rng.below(200)
            ws.drainOutput { buffer in
                let n = min(buffer.count, budget)
                drained += n
                sent += buffer.prefix(n)
                return n
            }
        }
        if flags & 16 != 0 {
            let closing = ws.close(code: 1000, reason: "fuzz done")
            precondition(!closing || ws.state == .closeSent, "close() returned true but state \(ws.state)")
        }
        _ = ws.transportEnded()
        precondition(ws.state == .closed)
        precondition([0x88, 0x00].withUnsafeBytes { ws.receive($0) }.isEmpty, "events after transportEnded")
        ws.drainOutput { sent += $0; return $0.count }
        checkClientFrames(sent)
    }

    /// What the client wrote after the upgrade request: whole, masked frames; control
    /// frames of at most 125 bytes; at most one close frame, with a code that may be sent
    /// and a UTF-8 reason, and nothing after it.
    static func checkClientFrames(_ bytes: [UInt8]) {
        var i = 0
        var closed = false
        while i < bytes.count {
            precondition(!closed, "a frame after our close frame")
            precondition(bytes.count - i >= 6, "truncated client frame header")
            let b0 = bytes[i], b1 = bytes[i + 1]
            precondition(b0 & 0x70 == 0 && b1 & 0x80 != 0, "client frame with reserved bits or unmasked")
            guard let opcode = Opcode(rawValue: b0 & 0x0F) else { preconditionFailure("client frame opcode \(b0 & 0x0F)") }
            var length = Int(b1 & 0x7F)
            var header = 2
            if length == 126 {
                length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
                header = 4
            } else if length == 127 {
                length = 0
                for k in 0..<8 { length = length << 8 | Int(bytes[i + 2 + k]) }
                header = 10
            }
            precondition(bytes.count - i >= header + 4 + length, "truncated client frame")
            let key = Array(bytes[(i + header)..<(i + header + 4)])
            let payload = (0..<length).map { bytes[i + header + 4 + $0] ^ key[$0 & 3] }
            i += header + 4 + length
            if opcode.isControl {
                precondition(b0 & 0x80 != 0 && length <= 125, "client control frame fragmented or \(length) bytes")
            }
            if opcode == .close {
                closed = true
                precondition(payload.count != 1, "close frame with a 1-byte payload")
                if payload.count >= 2 {
                    let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
                    precondition(WebSocketConnection.isValidReceivedCloseCode(code), "client sent close code \(code)")
                    precondition(String(validating: payload[2...], as: UTF8.self) != nil, "close reason not UTF-8")
                }
            }
        }
    }

    /// FrameDecoder fed whole and in chunks must agree; frames must respect the limits.
    static func frameDecoderDifferential(_ bytes: [UInt8], chunking: UInt8, maxPayloadBytes: Int) {
        func check(_ frame: Frame) {
            precondition(frame.payload.count <= maxPayloadBytes, "frame of \(frame.payload.count) bytes > \(maxPayloadBytes)")
            if frame.opcode.isControl {
                precondition(frame.fin && frame.payload.count <= 125, "bad control frame \(frame.opcode) \(frame.payload.count)")
            }
        }
        var whole = FrameDecoder(maxPayloadBytes: maxPayloadBytes)
        whole.append(bytes)
        var wholeFrames: [Frame] = []
        var wholeError: WebSocketError?
        do {
            while let frame = try whole.next() { check(frame); wholeFrames.append(frame) }
        } catch {
            wholeError = error
        }
        precondition(whole.bufferedByteCount <= bytes.count)

        var chunked = FrameDecoder(maxPayloadBytes: maxPayloadBytes)
        var rng = FuzzRandom(seed: UInt64(chunking) &* 0x2545_F491_4F6C_DD1D &+ 1)
        var chunkedFrames: [Frame] = []
        var chunkedError: WebSocketError?
        var offset = 0
        outer: while offset < bytes.count {
            let n = min(bytes.count - offset, 1 + rng.below(Int(chunking) + 1))
            chunked.append(Array(bytes[offset..<(offset + n)]))
            offset += n
            precondition(chunked.bufferedByteCount <= offset)
            do {
                while let frame = try chunked.next() { check(frame); chunkedFrames.append(frame) }
            } catch {
                chunkedError = error
                break outer
            }
        }
        precondition(wholeFrames == chunkedFrames, "whole and chunked decoding disagree on frames")
        precondition(wholeError == chunkedError, "whole and chunked decoding disagree: \(String(describing: wholeError)) vs \(String(describing: chunkedError))")
    }

    // MARK: server_message

    /// Input: one or more server messages separated by NUL bytes (never valid in JSON).
    /// A message starting with 0x01 is a binary (audio) message of the bytes after it;
    /// any other is a text message. The whole input also goes to JSONParser (bytes and
    /// String) and ServerMessage.parse. The messages are then played three times:
    ///   1. to a ready session (onready "fuzz" first);
    ///   2. the first `laterPassMessages` to a session that is only open (an onready
    ///      among them makes it ready, with the input's session_id);
    ///   3. if 2 ended ready: the connection is lost, the session reconnects (tick past
    ///      the backoff, transport opened: `initiate` continues the input's session id)
    ///      and gets those messages again.
    /// After every message, everything the network loop would do with the actions runs
    /// (FuzzConsumers: timeline, turns, the application-format converter, the analyser),
    /// and every getter and serialiser is read: stats JSON (must parse), session id,
    /// states, next deadline.
    static func serverMessage(_ data: [UInt8]) {
        jsonChecks(data)
        _ = try? ServerMessage.parse(String(decoding: data, as: UTF8.self))
        let parts = Array(data.split(separator: 0, omittingEmptySubsequences: false).prefix(256))
        // Which application audio format the agent's audio is converted to.
        let format = Int(data.count % FuzzConsumers.formats.count)

        // 1. A ready session.
        let ms: UInt64 = 1_000_000
        var now: UInt64 = 1_000 * ms
        let ready = fuzzSession(reconnectAttempts: 0)
        var consumers = FuzzConsumers(format: format, now: now)
        consumers.perform(ready.start(try! StartOptions(agentId: "fuzz-agent"), now: now), ready, now: now)
        consumers.perform(ready.transportOpened(now: now), ready, now: now)
        let onready = #"{"method":"onready","payload":{"session_id":"fuzz"}}"#
        consumers.receivedText(onready, now: now)
        consumers.perform(ready.receivedText(onready, now: now), ready, now: now)
        precondition(ready.connectionState == .ready)
        let messages = play(parts, ready, &consumers, now: &now, allowed: [.ready], checkText: true)
        precondition(ready.stats.messagesReceived == messages + 1)
        close(ready, &consumers, now: now)

        // 2. An open session, not yet ready.
        now = 1_000 * ms
        let session = fuzzSession(reconnectAttempts: 2)
        consumers = FuzzConsumers(format: format, now: now)
        consumers.perform(session.start(try! StartOptions(agentId: "fuzz-agent"), now: now), session, now: now)
        consumers.perform(session.transportOpened(now: now), session, now: now)
        precondition(session.connectionState == .open)
        // The first messages: an onready among them makes it ready with the input's id.
        let openParts = Array(parts.prefix(Self.laterPassMessages))
        let openMessages = play(openParts, session, &consumers, now: &now, allowed: [.open, .ready], checkText: false)
        precondition(session.stats.messagesReceived == openMessages)

        // 3. Ready by the input's own onready: lose the connection and resume it.
        if session.connectionState == .ready {
            let id = session.sessionId
            precondition(id != nil, "ready without a session id")
            consumers.perform(session.transportFailed(.connectionLost, "fuzz: connection lost", closeCode: 1006, now: now), session, now: now)
            readGetters(session, &consumers)
            if session.connectionState == .reconnecting {
                guard let deadline = session.nextDeadline else { preconditionFailure("reconnecting without a deadline") }
                precondition(deadline >= now, "the backoff deadline \(deadline) is in the past (now \(now))")
                now = deadline
                let tick = session.tick(now: now)
                precondition(tick.contains(.connect), "no connect at the backoff deadline: \(tick)")
                consumers.perform(tick, session, now: now)
                let opened = session.transportOpened(now: now)
                var initiate: JSONValue?
                for case .sendText(let text) in opened { initiate = try? JSONParser.parse(text) }
                guard let initiate else { preconditionFailure("no valid initiate on reconnection: \(opened)") }
                let continuation = initiate["data"]?["session_continuation"]?["session_id"]
                // The id goes back as onready carried it: its text is the string itself,
                // or the JSON text of any other value.
                if let id, !id.isEmpty {
                    precondition(continuation?.stringValue == id || continuation?.jsonText == id,
                                 "initiate does not continue the session id")
                } else {
                    precondition(continuation == nil, "initiate continues an empty session id")
                }
                consumers.perform(opened, session, now: now)
                precondition(session.connectionState == .reconnecting)
                _ = play(openParts, session, &consumers, now: &now, allowed: [.reconnecting, .ready], checkText: false)
            } else {
                precondition(session.connectionState == .idle, "lost connection left \(session.connectionState)")
            }
        }
        if session.connectionState != .idle { close(session, &consumers, now: now) }
    }

    /// Messages played to the open and the resumed sessions: past these, a pass costs
    /// time and finds what the first found.
    static let laterPassMessages = 16
    /// Messages whose timeline lines are written and parsed back: the writer's escaping
    /// of any text is checked on the whole input (jsonChecks), so a few show the rest.
    static let lineCheckedMessages = 4

    static func fuzzSession(reconnectAttempts: Int) -> Session {
        let ms: UInt64 = 1_000_000
        // The ready timeout outlasts any input (256 messages, < 100 ms each).
        var settings = Session.Settings(frameBytes: 640, readyTimeoutNanoseconds: 3_600_000 * ms,
                                        endpointDescription: "ws://fuzz/millis")
        settings.pingEveryAudioBytes = 3 * 640
        // A fixed clock, so that a pong in the corpus can answer the harness's pings.
        settings.wallClockMilliseconds = { 1_700_000_000_000 }
        settings.reconnectAttempts = reconnectAttempts
        settings.reconnectInitialDelayNanoseconds = 100 * ms
        settings.reconnectMaxDelayNanoseconds = 400 * ms
        return Session(settings: settings)
    }

    /// Plays the messages to `session`; returns how many were text. The session must stay
    /// in one of the `allowed` states throughout. `checkText`: also check what depends on
    /// a message's text alone (JSON round trip, its timeline line), once per input.
    static func play(_ parts: [ArraySlice<UInt8>], _ session: Session, _ consumers: inout FuzzConsumers,
                     now: inout UInt64, allowed: Set<ConnectionState>, checkText: Bool) -> Int {
        let ms: UInt64 = 1_000_000
        var messages = 0
        for (index, part) in parts.enumerated() {
            // What depends on a message's text alone (its timeline line, the JSON round
            // trip) is the same in every pass and for every later message of its kind:
            // checked in the first pass, for the first messages (jsonChecks covers the
            // writer on the whole input).
            consumers.checkLines = checkText && index < Self.lineCheckedMessages
            let actions: [Session.Action]
            if part.first == 1 {
                actions = session.receivedBinary(Array(part.dropFirst()), now: now)
            } else {
                let text = String(decoding: part, as: UTF8.self)
                if consumers.checkLines, let message = try? ServerMessage.parse(text) {
                    jsonChecks(Array(text.utf8))
                    _ = message
                }
                consumers.receivedText(text, now: now)
                actions = session.receivedText(text, now: now)
                messages += 1
            }
            precondition(actions.count <= 4, "\(actions.count) actions for one message: \(actions)")
            consumers.perform(actions, session, now: now)
            precondition(allowed.contains(session.connectionState), "a server message left the session \(session.connectionState)")
            now += UInt64(part.count % 97) * ms
            consumers.perform(session.tick(now: now), session, now: now)
            precondition(allowed.contains(session.connectionState), "a tick left the session \(session.connectionState)")
            // The user speaks for 8 messages, then is silent for 8: the VAD finds ends
            // of speech, so turns get their latency figures.
            let user = [UInt8](repeating: (index / 8) % 2 == 0 ? 0x11 : 0, count: 700)
            consumers.perform(session.userAudio(user, now: now), session, now: now)
            readGetters(session, &consumers)
        }
        return messages
    }

    /// Stops and closes the session cleanly, and reads everything once more.
    static func close(_ session: Session, _ consumers: inout FuzzConsumers, now: UInt64) {
        consumers.perform(session.stop(now: now), session, now: now)
        precondition(session.connectionState == .closing, "stop left \(session.connectionState)")
        consumers.perform(session.transportClosed(code: 1000, reason: "", now: now), session, now: now)
        precondition(session.connectionState == .idle && session.agentState == .idle)
        readGetters(session, &consumers)
        consumers.readAnalyser()
    }

    /// Every getter of the session, as millis_client_* would read them. The stats JSON
    /// (millis_client_stats_json) is made and parsed (it must be a valid JSON object)
    /// whenever one of its Double figures (ping RTT, latency) changed: the integer
    /// counters can neither trap nor make it invalid.
    static func readGetters(_ session: Session, _ consumers: inout FuzzConsumers) {
        let stats = session.stats
        let figures = [stats.lastPingRTTMilliseconds?.bitPattern, stats.lastLatencyMilliseconds?.bitPattern]
        if figures != consumers.checkedStatsFigures {
            consumers.checkedStatsFigures = figures
            let json = stats.json
            guard let parsed = try? JSONParser.parse(json), parsed.isObject else {
                preconditionFailure("stats JSON does not parse: \(json.prefix(300))")
            }
            precondition(parsed["messages_received"] == .number("\(stats.messagesReceived)"))
        }
        // The id changes only on onready: checked when it does (a 10 KB id written and
        // parsed after every message would be most of an input's cost).
        if let id = session.sessionId, id != consumers.checkedSessionId {
            consumers.checkedSessionId = id
            precondition((try? JSONParser.parse(JSONWriter.quoted(id))) == .string(id), "session id does not round-trip")
        }
        _ = session.agentState.name
        _ = session.connectionState
        _ = session.nextDeadline
        _ = session.reconnectAttempt
        _ = session.isMuted
    }

    /// JSONParser: byte and String entry points agree; a parsed value written back parses
    /// to the same value and writes the same text again.
    static func jsonChecks(_ data: [UInt8]) {
        let fromBytes = try? JSONParser.parse(data)
        if let valid = String(validating: data, as: UTF8.self) {
            let fromString = try? JSONParser.parse(valid)
            precondition(fromBytes == fromString, "JSONParser disagrees on bytes and String input")
        } else {
            precondition(fromBytes == nil, "JSONParser accepted invalid UTF-8")
        }
        guard let value = fromBytes else { return }
        let text = value.jsonText
        guard let again = try? JSONParser.parse(text) else {
            preconditionFailure("JSONWriter output does not parse: \(text.prefix(200))")
        }
        precondition(again == value, "JSON round trip changed the value: \(text.prefix(200))")
        precondition(again.jsonText == text, "JSON round trip changed the text")
    }

    // MARK: helpers

    static func headerValue(_ name: String, in head: [UInt8]) -> String? {
        let text = String(decoding: head, as: UTF8.self)
        let prefix = name.lowercased() + ":"
        for line in text.split(separator: "\r\n") where line.lowercased().hasPrefix(prefix) {
            return line.dropFirst(prefix.count).trimmingASCIISpaces()
        }
        return nil
    }

    static func replacing(_ pattern: [UInt8], with replacement: [UInt8], in bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if i + pattern.count <= bytes.count && bytes[i..<(i + pattern.count)].elementsEqual(pattern) {
                out += replacement
                i += pattern.count
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}

/// What a conversation does with its session's actions (Conversation.perform and
/// Conversation+Delivery.swift, application audio mode), without a socket, devices or
/// files: the conversation timeline and its turn tracker, the converter of the agent's
/// audio to the application's format, the agent analyser. Every JSON they make must
/// parse.
struct FuzzConsumers {
    static let formats: [ApplicationAudioFormat] = [
        .wire, try! ApplicationAudioFormat(encoding: .pcm16, sampleRate: 8_000),
        try! ApplicationAudioFormat(encoding: .pcm16, sampleRate: 24_000),
        try! ApplicationAudioFormat(encoding: .pcm16, sampleRate: 48_000),
        try! ApplicationAudioFormat(encoding: .muLaw, sampleRate: 8_000),
        try! ApplicationAudioFormat(encoding: .aLaw, sampleRate: 8_000),
    ]

    /// The converters and the analyser are made once and reset for each use: making them
    /// (the resampler's tables, the analyser's 32768-sample history and FFTs) cost more
    /// than a short input's whole run.
    nonisolated(unsafe) private static let converters: [ApplicationAudioConverter] = formats.map { format in
        guard let converter = ApplicationAudioConverter(format: format, toWire: false) else {
            preconditionFailure("no converter for \(format)")
        }
        return converter
    }
    private static let sharedAnalyser: Analyser = {
        let analyser = Analyser()
        try! analyser.setFFTSize(64)
        return analyser
    }()

    let timeline = ConversationTimeline()
    let converter: ApplicationAudioConverter
    let analyser = FuzzConsumers.sharedAnalyser
    private var floats = [Float](repeating: 0, count: 64)
    private var bytes = [UInt8](repeating: 0, count: 64)

    init(format: Int, now: UInt64) {
        converter = Self.converters[format]
        converter.reset()
        analyser.reset()
        timeline.begin(now: now)
    }

    /// The stats' Double figures as last parsed (FuzzHarness.readGetters).
    var checkedStatsFigures: [UInt64?] = [UInt64.max]
    /// The session id as last checked.
    var checkedSessionId: String?

    /// Check every timeline line; otherwise (a later pass over the same messages) only
    /// those of events that differ between passes (ready, reconnected, latency).
    var checkLines = true

    /// A text message as it arrives (before the session sees it), and its timeline line.
    func receivedText(_ text: String, now: UInt64) {
        timeline.receivedText(text, now: now)
        if checkLines { Self.checkLine(ConversationTimeline.controlMessageFields("recv", text)) }
    }

    mutating func perform(_ actions: [Session.Action], _ session: Session, now: UInt64) {
        for action in actions {
            switch action {
            case .sendText(let text):
                timeline.sentText(text, now: now)
                if checkLines || text.contains("session_continuation") {
                    Self.checkLine(ConversationTimeline.controlMessageFields("send", text))
                }
            case .sendBinary(let pcm):
                timeline.sentAudio(pcm, now: now, analyse: true)
            case .emit(let event):
                deliver(event, now: now)
            case .playout(.clear):
                converter.reset()
                if let turn = timeline.cleared(now: now) { report(turn, now: now) }
            case .flushOutputConverter:
                let tail = converter.flush()
                precondition(tail.count % converter.format.bytesPerSample == 0)
            case .completeRecording(let code, let reason):
                note(.close(code: code, reason: reason), now: now)
                _ = timeline.detach()
            case .connect, .closeHandshake, .disconnect, .playout, .enableCapture, .announceStreams, .stopDevices:
                break
            }
        }
    }

    private mutating func deliver(_ event: SessionEvent, now: UInt64) {
        switch event {
        case .audio(let pcm):
            precondition(!pcm.isEmpty && pcm.count % 2 == 0, "agent audio of \(pcm.count) bytes")
            if let turn = timeline.agentAudio(pcm, now: now, playedNow: true) { report(turn, now: now) }
            pcm.withUnsafeBytes { analyser.write($0.bindMemory(to: Int16.self)) }
            let out = converter.fromWire(pcm)
            let format = converter.format
            // At most the input's duration at the output rate, plus the filter's rounding.
            let bound = (pcm.count / 2) * format.sampleRate / 16_000 + 64
            precondition(out.count <= bound * format.bytesPerSample, "\(out.count) bytes out for \(pcm.count) in")
            precondition(out.count % format.bytesPerSample == 0)
            readAnalyser()
            return
        case .log:
            return
        case .close:
            // completeRecording noted it.
            return
        default:
            note(event, now: now)
        }
        switch event {
        case .ready(let id, let payloadJSON):
            precondition((try? JSONParser.parse(payloadJSON)) != nil, "ready payload is not JSON: \(payloadJSON.prefix(200))")
            _ = id
        case .function(_, _, let paramsJSON):
            precondition((try? JSONParser.parse(paramsJSON)) != nil, "function params are not JSON: \(paramsJSON.prefix(200))")
        default:
            break
        }
    }

    /// An event in the timeline, and its line.
    private mutating func note(_ event: SessionEvent, now: UInt64) {
        if let turn = timeline.event(event, now: now) { report(turn, now: now) }
        var differs = false
        switch event {
        case .ready, .reconnected, .latency: differs = true
        default: break
        }
        if checkLines || differs, let fields = ConversationTimeline.fields(of: event) {
            Self.checkLine([("type", .string("event"))] + fields)
        }
    }

    /// A turn's JSON, for the application and for a recording's line.
    private func report(_ turn: TurnTracker.Turn, now: UInt64) {
        guard let json = timeline.report(turn, now: now, forApplication: true),
              let value = try? JSONParser.parse(json), value.isObject else {
            preconditionFailure("turn JSON does not parse")
        }
        precondition(value["turn"] == .number("\(turn.number)"))
        for base: UInt64 in [0, now, .max] {
            precondition((try? JSONParser.parse(turn.json(base: base))) != nil, "turn JSON at base \(base) does not parse")
        }
    }

    /// A timeline line with `fields` must be a JSON object that keeps them all.
    static func checkLine(_ fields: [(key: String, value: JSONValue)]) {
        let line = ConversationTimeline.line(t: "1.000000", fields)
        guard let value = try? JSONParser.parse(line), case .object(let members) = value, members.count == fields.count + 1 else {
            preconditionFailure("timeline line does not parse: \(line.prefix(300))")
        }
    }

    /// The analyser's getters, as millis_analyser_* read them.
    mutating func readAnalyser() {
        let rms = analyser.rmsDBFS
        precondition(rms.isFinite && rms >= Analyser.silenceDBFS, "rmsDBFS \(rms)")
        let size = analyser.fftSize
        precondition(floats.withUnsafeMutableBufferPointer { analyser.getFloatTimeDomainData($0) } == min(64, size))
        precondition(floats.allSatisfy { $0.isFinite && abs($0) <= 1 })
        precondition(bytes.withUnsafeMutableBufferPointer { analyser.getByteTimeDomainData($0) } == min(64, size))
        precondition(floats.withUnsafeMutableBufferPointer { analyser.getFloatFrequencyData($0) } == min(64, size / 2))
        precondition(!floats.prefix(size / 2).contains { $0.isNaN }, "NaN in the frequency data")
        precondition(bytes.withUnsafeMutableBufferPointer { analyser.getByteFrequencyData($0) } == min(64, size / 2))
        _ = analyser.frequencyBinCount
        _ = analyser.minDecibels
        _ = analyser.maxDecibels
        _ = analyser.smoothingTimeConstant
    }
}

/// splitmix64: deterministic chunk sizes from the input's own bytes.
struct FuzzRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in 0..<n (n > 0).
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
