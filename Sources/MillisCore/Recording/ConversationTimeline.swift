/// What a client's conversation looks like in time: the user's voice activity, the
/// latency of each agent turn, and, while a recording runs, every event and control
/// message as timeline lines. Network-loop thread only; the loop reports each moment
/// as it happens.
final class ConversationTimeline {
    private(set) var recorder: Recorder?
    private var vad = VoiceActivityDetector()
    private var turns = TurnTracker()
    private var conversationStart: UInt64 = 0
    /// Application mode: where the simulated playout of the agent's audio ends, so a
    /// recording places an answer that arrives in a burst where it would have played.
    private var agentPlayoutEnd: UInt64 = 0
    /// The user stream's clock: where its last frame ended.
    private var userStreamEnd: UInt64 = 0
    /// The stream's recent frames and when each was sent (the VAD decides an end a
    /// hangover after it happened).
    private var sentFrames: [(streamEnd: UInt64, sentAt: UInt64)] = []
    private static let sentFramesKept: UInt64 = 2_000_000_000
    /// How far ahead of the clock the user stream may run and still count as real time.
    private static let aheadTolerance: UInt64 = 100_000_000

    /// A conversation starts now (millis_client_start).
    func begin(now: UInt64) {
        conversationStart = now
        vad.reset()
        turns.reset()
        agentPlayoutEnd = 0
        userStreamEnd = 0
        sentFrames.removeAll()
    }

    /// Starts writing to `recorder`: its header line first.
    func attach(_ recorder: Recorder, now: UInt64) {
        self.recorder = recorder
        let offset = Int64(bitPattern: recorder.startedAt &- conversationStart)
        let layout = recorder.mono ? "mixed" : "user-left agent-right"
        let slash = recorder.audioPath.lastIndex(of: "/").map { recorder.audioPath.index(after: $0) }
        write([
            ("type", .string("recording")), ("version", .string(MillisVersion.string)),
            ("audio", .string(String(recorder.audioPath[(slash ?? recorder.audioPath.startIndex)...]))),
            ("format", .string(recorder.format.rawValue)), ("sample_rate", .number("16000")),
            ("channels", .number(recorder.mono ? "1" : "2")), ("layout", .string(layout)),
            ("started_at", .string(WallClock.iso8601())),
            ("conversation_offset", .number(Seconds.format(max(0, offset)))),
        ], at: recorder.startedAt)
    }

    /// Stops writing (the caller finishes the recorder).
    func detach() -> Recorder? {
        defer { recorder = nil }
        return recorder
    }

    // MARK: Moments

    /// A user audio frame went to the socket now (its last sample just captured).
    ///
    /// The user's audio is one contiguous stream: its own clock runs from frame to frame
    /// (a file read fast runs ahead of real time), the VAD and the recording follow it,
    /// and a moment the VAD finds is reported at the time its audio went to the socket
    /// (what the server could know of it).
    func sentAudio(_ pcm: [UInt8], now: UInt64, analyse: Bool) {
        let duration = UInt64(pcm.count / 2) * 62_500
        let start = max(now &- duration, userStreamEnd)
        userStreamEnd = start + duration
        // Nobody asked for turns or a recording: the detector's work per frame (a fifth
        // of a session's own cost at scale) buys nothing.
        guard analyse || recorder != nil else { return }
        sentFrames.append((streamEnd: userStreamEnd, sentAt: now))
        while let first = sentFrames.first, first.streamEnd + Self.sentFramesKept < userStreamEnd {
            sentFrames.removeFirst()
        }
        pcm.withUnsafeBytes { raw in
            let samples = raw.bindMemory(to: Int16.self)
            for event in vad.feed(samples, startTime: start) {
                switch event {
                case .speechStart(let at):
                    writeVAD("speech_start", at: sentTime(ofStreamTime: at), now: now)
                case .speechEnd(let at):
                    let sent = sentTime(ofStreamTime: at)
                    // Audio sent ahead of real time (a file read fast) puts several
                    // turns on the wire before the first answer: which end belongs to
                    // which answer is unknowable, so such an end starts no latency.
                    if userStreamEnd <= now + Self.aheadTolerance { turns.speechEnded(at: sent) }
                    writeVAD("speech_end", at: sent, now: now)
                }
            }
            recorder?.user.write(samples, at: start)
        }
    }

    /// When the audio at stream time `t` went to the socket: `t` itself for a stream in
    /// real time, the send time of its frame for one sent ahead of it.
    private func sentTime(ofStreamTime t: UInt64) -> UInt64 {
        guard let frame = sentFrames.first(where: { $0.streamEnd >= t }) else { return t }
        return min(t, frame.sentAt)
    }

    private func writeVAD(_ what: String, at time: UInt64, now: UInt64) {
        write([("type", .string("vad")), ("side", .string("user")), ("event", .string(what)),
               ("at", .number(recorder?.time(time) ?? "0"))], at: now)
    }

    func sentText(_ text: String, now: UInt64) {
        guard recorder != nil else { return }
        controlMessage("send", text, now: now)
    }

    func receivedText(_ text: String, now: UInt64) {
        guard recorder != nil else { return }
        controlMessage("recv", text, now: now)
    }

    /// Agent audio arrived now; in application mode it is also "played" now (handed to
    /// the application). Returns a completed turn.
    func agentAudio(_ pcm: [UInt8], now: UInt64, playedNow: Bool) -> TurnTracker.Turn? {
        turns.agentAudio(at: now)
        guard playedNow else { return nil }
        if let recorder {
            let start = max(now, agentPlayoutEnd)
            agentPlayoutEnd = start + UInt64(pcm.count / 2) * 62_500
            pcm.withUnsafeBytes { recorder.agent.write($0.bindMemory(to: Int16.self), at: start) }
        }
        return turns.played(at: now)
    }

    /// The speaker started playing an answer at `time` (device mode).
    func played(at time: UInt64) -> TurnTracker.Turn? {
        turns.played(at: time)
    }

    /// An event for the application. Returns a turn that it ended or cut short.
    func event(_ event: SessionEvent, now: UInt64) -> TurnTracker.Turn? {
        var ended: TurnTracker.Turn?
        switch event {
        case .agentState(.prepareAnswer): ended = turns.startAnswering(at: now)
        case .agentState(.idle), .close: ended = turns.interrupted()
        default: break
        }
        if recorder != nil, let fields = Self.fields(of: event) {
            write([("type", .string("event"))] + fields, at: now)
        }
        return ended
    }

    /// Barge-in: the turn under way (if its audio never played) is cut short.
    func cleared(now: UInt64) -> TurnTracker.Turn? {
        agentPlayoutEnd = now
        return turns.interrupted()
    }

    /// A turn's JSON for the application (times since the start) and, when recording,
    /// its timeline line (times on the recording's clock).
    /// The turn's JSON for the application (nil when it did not ask: `forApplication`),
    /// after its line in the recording.
    func report(_ turn: TurnTracker.Turn, now: UInt64, forApplication: Bool) -> String? {
        if let recorder {
            var line = "{\"t\":\(recorder.time(now)),\"type\":\"turn\","
            line += turn.json(base: recorder.startedAt).dropFirst()
            recorder.line(line)
        }
        return forApplication ? turn.json(base: conversationStart) : nil
    }

    // MARK: Lines

    private func write(_ fields: [(key: String, value: JSONValue)], at time: UInt64) {
        guard let recorder else { return }
        recorder.line(Self.line(t: recorder.time(time), fields))
    }

    /// A timeline line: `t` (seconds on the recording's clock, as text), then `fields`.
    static func line(t: String, _ fields: [(key: String, value: JSONValue)]) -> String {
        var line = ""
        JSONWriter.write(.object([("t", .number(t))] + fields), to: &line)
        return line
    }

    private func controlMessage(_ direction: String, _ text: String, now: UInt64) {
        write(Self.controlMessageFields(direction, text), at: now)
    }

    /// A control message's line: its method and the message (public key redacted), or
    /// its text when it is not a JSON object. Pure, so the fuzz harness checks it
    /// without a recording.
    static func controlMessageFields(_ direction: String, _ text: String) -> [(key: String, value: JSONValue)] {
        guard let value = try? JSONParser.parse(text), value.isObject else {
            return [("type", .string(direction)), ("method", .null), ("text", .string(text))]
        }
        return [("type", .string(direction)), ("method", value["method"] ?? .null), ("message", redacted(value))]
    }

    /// The message without its public key (initiate carries it).
    private static func redacted(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            return .object(members.map { m in
                (m.key, m.key == "public_key" ? .string("<redacted>") : redacted(m.value))
            })
        case .array(let elements):
            return .array(elements.map(redacted))
        default:
            return value
        }
    }

    /// An event's line fields (nil for events the timeline does not record).
    static func fields(of event: SessionEvent) -> [(key: String, value: JSONValue)]? {
        func name(_ s: StaticString) -> JSONValue { .string(s.description) }
        switch event {
        case .open: return [("event", .string("open"))]
        case .ready(let id, _): return [("event", .string("ready")), ("session_id", .string(id))]
        case .sessionEnded: return [("event", .string("session_ended"))]
        case .responseText(let text, let isFinal):
            return [("event", .string("response_text")), ("text", .string(text)), ("is_final", .bool(isFinal))]
        case .transcript(let text, let isFinal):
            return [("event", .string("transcript")), ("text", .string(text)), ("is_final", .bool(isFinal))]
        case .function(let text, let functionName, let params):
            return [("event", .string("function")), ("name", .string(functionName)),
                    ("params", (try? JSONParser.parse(params)) ?? .string(params)), ("text", .string(text))]
        case .latency(let ms):
            // A latency that is not a finite number of ms (or is beyond Int64 ns) is null.
            return [("event", .string("latency")), ("ms", Seconds.formatMilliseconds(ms).map(JSONValue.number) ?? .null)]
        case .agentState(let state): return [("event", .string("agent_state")), ("state", name(state.name))]
        case .close(let code, let reason):
            return [("event", .string("close")), ("code", .number("\(code)")), ("reason", .string(reason))]
        case .error(let status, let message):
            return [("event", .string("error")), ("status", .number("\(status.rawValue)")),
                    ("status_name", name(status.summary)), ("message", .string(message))]
        case .message(let method, _): return [("event", .string("message")), ("method", .string(method))]
        case .reconnecting(let attempt, let delay):
            return [("event", .string("reconnecting")), ("attempt", .number("\(attempt)")), ("delay_ms", .number("\(delay)"))]
        case .reconnected(let id): return [("event", .string("reconnected")), ("session_id", .string(id))]
        case .inputEnded: return [("event", .string("input_ended"))]
        case .audio, .log, .analyzer, .userAudioReady, .turn: return nil
        }
    }
}
