#if canImport(Glibc)
import Glibc
#endif
import CSystem
import Synchronization

/// One client: a conversation at a time with a Millis agent. A facade: its configuration,
/// the snapshot callers read, the dispatch of events to the handler. Public methods may
/// be called from any thread, including from inside its event handler: they check their
/// input here and post the work to the network loop, which alone touches the client's
/// `Conversation` (the session, the connection, the devices, the recording).
public final class Client: @unchecked Sendable {
    public let config: ClientConfig
    /// The audio mode in force: `.application` or `.device` (default resolved at creation).
    public let audioMode: AudioMode
    let loop: NetworkLoop
    let audioCounters = AudioCounters()
    /// An application takes per-turn latencies (millis_client_on_turn): only then, or
    /// while recording, does the user's audio go through the voice activity detector.
    public let reportsTurns = Atomic<Bool>(false)
    /// Created on first use: 256 KiB of history each, which a telephony bridge with
    /// hundreds of clients should not pay for unless it asks.
    private let analysers = Locked<(agent: Analyser?, user: Analyser?)>((nil, nil))
    /// Set once either analyser exists: the audio paths ask on every frame, and almost
    /// always the answer is no, which needs no lock.
    private let anyAnalyser = Atomic<Bool>(false)
    /// send_audio's conversion to the wire format (nil when the app sends 16 kHz PCM16).
    private let inputConverter: Locked<ApplicationAudioConverter>?

    /// What callers may read at any time; the loop publishes it after every input.
    struct Snapshot {
        /// A conversation was started and its close has not been reported yet.
        var busy = false
        var connectionState: ConnectionState = .idle
        /// The session sends microphone audio (from initiate on).
        var acceptsAudio = false
        var agentState: AgentState = .idle
        var sessionId: String?
        var sessionStats = SessionStats()
        /// Audio refused by `sendAudio` before the session was ready.
        var droppedFrames = 0
        var droppedBytes = 0
        var finishedConversations = 0
        var muted = false
        /// `start` claimed the client and has not posted the start yet.
        var starting = false
        /// `stop` was called meanwhile: `start` posts the stop after its start.
        var stopAfterStart = false
    }
    private let snapshot = Locked(Snapshot())

    private let dispatchLock = RecursiveLock()
    // Guarded by dispatchLock.
    private var handler: ((SessionEvent) -> Void)?
    private var destroyed = false

    /// Network-loop thread only: the client names it in the commands it posts, and
    /// touches nothing of it.
    private let conversation: Conversation

    /// The recording under way or last finished, and one asked for before a start.
    private struct Recordings {
        var current: Recorder?
        var armed: (path: String, mono: Bool)?
        /// `startRecording` claimed the slot and is creating the files.
        var creating = false

        /// A recording is armed, being created, or writing (started, not yet finishing).
        var underWay: Bool { armed != nil || creating || current.map { !$0.isFinishing } ?? false }
    }
    private let recordings = Locked(Recordings())

    /// Whether the calling process created this client. A child made by fork() gets a
    /// copy of its parent's clients, but not the network thread that served them, and
    /// their connections are the parent's (see `NetworkLoop.shared`). Their locks may
    /// even have been held by a thread of the parent at the moment of the fork, and stay
    /// locked in the child: callers ask this before anything else, and a client of
    /// another process takes no lock and touches nothing of its connection.
    public var belongsToThisProcess: Bool { loop.processID == getpid() }

    /// Why a client of another process refuses a call.
    public static let otherProcessMessage: StaticString = "this client belongs to the process that created it: this process is a child made by fork() after the client was created, and a client is used only by the process that created it; create a new client here (millis_client_destroy on this one releases nothing of the other process's)"

    private static var otherProcess: MillisError {
        MillisError(.invalidState, otherProcessMessage.description)
    }

    public init(config: ClientConfig) throws(MillisError) {
        try config.validateForClient()
        self.config = config
        self.loop = NetworkLoop.shared
        switch config.audioMode {
        case .application: audioMode = .application
        case .device: audioMode = .device
        case .default: audioMode = config.usesAudioFiles || AudioDevices.canOpen(config.audio) ? .device : .application
        }
        let format = config.applicationAudioFormat
        let needsConversion = audioMode == .application && format != .wire
        inputConverter = needsConversion ? ApplicationAudioConverter(format: format, toWire: true).map { Locked($0) } : nil
        conversation = Conversation(config: config, audioMode: audioMode, loop: loop)
        // Before the loop ever sees the conversation: the queue's lock orders this write
        // before the loop's first read.
        conversation.owner = self
    }

    /// Sets the function that receives every event, on the network thread.
    public func setEventHandler(_ handler: @escaping (SessionEvent) -> Void) {
        dispatchLock.withLock { if !destroyed { self.handler = handler } }
    }

    /// Runs `body` while no event of this client is being dispatched (re-entrant from
    /// inside the handler).
    public func withDispatchLock<T>(_ body: () throws -> T) rethrows -> T {
        try dispatchLock.withLock(body)
    }

    // MARK: API

    public func start(_ options: StartOptions) throws(MillisError) {
        guard belongsToThisProcess else { throw Self.otherProcess }
        let claimed = snapshot.withLock { s -> Bool in
            guard !s.busy else { return false }
            s.busy = true
            s.starting = true
            s.connectionState = .connecting
            return true
        }
        guard claimed else {
            throw MillisError(.invalidState, "a conversation is already under way: call millis_client_stop and wait for onclose before starting again")
        }
        var engine: AudioEngine?
        var recorder: Recorder?
        do {
            // Opened here, on the caller's thread, so a missing or busy device, or a file
            // that cannot be read or created, is start's own error, not a callback later.
            if audioMode == .device {
                engine = try AudioEngine(settings: config.audio, counters: audioCounters,
                                         agentAnalyser: agentAnalyser, userAnalyser: userAnalyser,
                                         wireFrameMilliseconds: config.frameMilliseconds)
            }
            let armed = recordings.withLock { r -> (path: String, mono: Bool)? in
                defer { r.armed = nil }
                return r.armed
            }
            if let asked = armed ?? config.recording {
                recorder = try Recorder(path: asked.path, mono: asked.mono, title: "libmillis conversation")
                recordings.withLock { $0.current = recorder }
            }
        } catch {
            engine?.stop()
            snapshot.withLock { s in
                s.busy = false
                s.starting = false
                s.stopAfterStart = false
                s.connectionState = .idle
            }
            throw error
        }
        loop.post(.start(conversation, NetworkLoop.StartRequest(options, engine: engine, recorder: recorder)))
        // A stop that came while the devices and files were opening follows the start
        // (posted from this thread, so in this order), instead of being lost before it.
        let stopNow = snapshot.withLock { s -> Bool in
            defer { s.starting = false; s.stopAfterStart = false }
            return s.stopAfterStart
        }
        if stopNow { loop.post(.stop(conversation)) }
    }

    /// Records the conversation under way from now, or the next one from its start.
    public func startRecording(path: String, mono: Bool) throws(MillisError) {
        guard belongsToThisProcess else { throw Self.otherProcess }
        _ = try AudioFileFormat(path: path, what: "recording")
        let busy = snapshot.withLock { $0.busy }
        // Checked and claimed in one step: of two overlapping calls, one is refused.
        let claimed = recordings.withLock { r -> Bool in
            guard !r.underWay else { return false }
            if busy { r.creating = true } else { r.armed = (path, mono) }
            return true
        }
        guard claimed else {
            throw MillisError(.invalidState, "a recording is already under way: call millis_client_stop_recording first")
        }
        guard busy else { return }
        let recorder: Recorder
        do {
            recorder = try Recorder(path: path, mono: mono, title: "libmillis conversation")
        } catch {
            recordings.withLock { $0.creating = false }
            throw error
        }
        recordings.withLock { r in
            r.current = recorder
            r.creating = false
        }
        loop.post(.recording(conversation, recorder, attach: true))
    }

    /// Ends the recording under way and waits for its files; the writer's failure.
    public func stopRecording() throws(MillisError) {
        guard belongsToThisProcess else { throw Self.otherProcess }
        let recorder = recordings.withLock { r -> Recorder? in
            r.armed = nil
            defer { r.current = nil }
            return r.current
        }
        guard let recorder else { return }
        loop.post(.recording(conversation, recorder, attach: false))
        if let failure = recorder.finishAndWait() { throw failure }
    }

    /// The analyser of the agent's audio as played (created on first use).
    public var agentAnalyser: Analyser { analyser(\.agent) }

    /// The analyser of the user's processed microphone audio (created on first use).
    public var userAnalyser: Analyser { analyser(\.user) }

    private func analyser(_ which: WritableKeyPath<(agent: Analyser?, user: Analyser?), Analyser?>) -> Analyser {
        analysers.withLock { a in
            if let existing = a[keyPath: which] { return existing }
            let created = Analyser()
            a[keyPath: which] = created
            anyAnalyser.store(true, ordering: .releasing)
            return created
        }
    }

    /// The analysers, only if someone asked for them (the audio paths feed nothing else).
    var existingAnalysers: (agent: Analyser?, user: Analyser?) {
        anyAnalyser.load(ordering: .acquiring) ? analysers.withLock { $0 } : (nil, nil)
    }

    public func stop() {
        guard belongsToThisProcess else { return }
        let post = snapshot.withLock { s -> Bool in
            guard s.busy else { return false }
            if s.starting {
                s.stopAfterStart = true  // start posts it after its own
                return false
            }
            return true
        }
        if post { loop.post(.stop(conversation)) }
    }

    public func setMuted(_ muted: Bool) {
        guard belongsToThisProcess else { return }
        // Posted under the lock: overlapping mute and unmute reach the loop in the order
        // the snapshot saw them, so is_muted always tells what the microphone does.
        snapshot.withLock { s in
            s.muted = muted
            loop.post(.mute(conversation, muted))
        }
    }

    public var isMuted: Bool { snapshot.withLock { $0.muted } }

    public func sendAudio(_ input: UnsafeRawBufferPointer) throws(MillisError) {
        guard belongsToThisProcess else { throw Self.otherProcess }
        guard input.count % config.applicationAudioFormat.bytesPerSample == 0 else {
            throw MillisError(.invalidArgument, "audio of \(input.count) bytes: PCM16 needs an even number of bytes")
        }
        guard audioMode == .application else {
            throw MillisError(.invalidState, "millis_client_send_audio is for application audio mode; this client plays and records through ALSA devices (device audio mode)")
        }
        if let converted = inputConverter?.withLock({ $0.toWire(input) }) {
            try sendWire(converted.count) { converted }
        } else {
            try sendWire(input.count) { Array(input) }
        }
    }

    /// `count` wire bytes; `bytes` makes the copy, only when they are going to be sent.
    private func sendWire(_ count: Int, _ bytes: () -> [UInt8]) throws(MillisError) {
        let ready = snapshot.withLock { s -> Bool in
            if s.acceptsAudio { return true }
            s.droppedBytes += count
            s.droppedFrames += (count + config.frameBytes - 1) / config.frameBytes
            return false
        }
        guard ready else {
            throw MillisError(.notReady, "no open WebSocket: audio is sent from onopen on (right after initiate, as the web client does); this audio was dropped")
        }
        guard count > 0 else { return }
        let pcm = bytes()
        if let user = existingAnalysers.user {
            pcm.withUnsafeBytes { user.write($0.bindMemory(to: Int16.self)) }
        }
        loop.post(.audio(conversation, pcm))
    }

    public func sendJSON(_ text: String) throws(MillisError) {
        guard belongsToThisProcess else { throw Self.otherProcess }
        let value: JSONValue
        do {
            value = try JSONParser.parse(text)
        } catch {
            throw MillisError(.invalidJSON, "message JSON: \(error)")
        }
        guard value.isObject else {
            throw MillisError(.invalidJSON, "a control message must be a JSON object like {\"method\": \"...\"}")
        }
        let state = snapshot.withLock { $0.connectionState }
        guard state == .open || state == .ready else {
            throw MillisError(.notReady, "no open WebSocket: start a conversation and wait for onopen")
        }
        loop.post(.json(conversation, text))
    }

    /// The caller runs on the network thread: inside a callback of some client.
    public var isCallbackThread: Bool { loop.isLoopThread }

    public var sessionId: String? { snapshot.withLock { $0.sessionId } }
    public var connectionState: ConnectionState { snapshot.withLock { $0.connectionState } }
    public var agentState: AgentState { snapshot.withLock { $0.agentState } }
    /// The counters as millis_client_stats_json reports them: the session's, then the
    /// audio engine's.
    public var statsJSON: String {
        var json = stats.json
        json.removeLast()
        let mode = audioMode == .device ? "device" : "application"
        return json + ",\"audio_mode\":\"\(mode)\"," + audioCounters.json + "}"
    }

    public var stats: SessionStats {
        snapshot.withLock { s in
            var stats = s.sessionStats
            stats.audioFramesDropped += s.droppedFrames
            stats.audioBytesDropped += s.droppedBytes
            return stats
        }
    }

    /// Ends the client: no event is dispatched after this returns (it waits for a
    /// handler running on another thread), and the connection is dropped. In a process
    /// that did not create the client it does nothing: the connection, the handler and
    /// the memory are the creating process's.
    public func destroy() {
        guard belongsToThisProcess else { return }
        dispatchLock.withLock {
            destroyed = true
            handler = nil
        }
        // A client that writes files waits for them to be complete (a process may exit
        // right after); inside a callback the loop completes them once it returns.
        let writesFiles = config.audio.outputFile != nil || recordings.withLock { $0.current.map { !$0.isFinishing } ?? false }
        guard writesFiles, !loop.isLoopThread else {
            loop.post(.destroy(conversation, completion: -1))
            return
        }
        let completion = csys_eventfd()
        loop.post(.destroy(conversation, completion: completion))
        guard completion >= 0 else { return }
        var fd = pollfd(fd: completion, events: Int16(POLLIN), revents: 0)
        _ = poll(&fd, 1, 10_000)
        Glibc.close(completion)
    }
}

/// The network loop's side: what the conversation reports and reads.
extension Client: ConversationOwner {
    /// Copies the session's state for readers on other threads. Called before the
    /// actions of an input run, so handlers see the state their event belongs to; once
    /// a conversation has finished, a new start is allowed (even from the close handler).
    func publish(_ s: Session) {
        snapshot.withLock { snap in
            if s.finishedConversations != snap.finishedConversations {
                snap.finishedConversations = s.finishedConversations
                snap.busy = false
            }
            // Between start() and the loop taking it up, the session is still idle.
            snap.connectionState = s.connectionState == .idle && snap.busy ? .connecting : s.connectionState
            snap.acceptsAudio = s.acceptsAudio
            snap.agentState = s.agentState
            snap.sessionId = s.sessionId
            snap.sessionStats = s.stats
        }
    }

    func emit(_ event: SessionEvent) {
        if case .log(let level, _) = event, level > config.logLevel || level == .none { return }
        dispatchLock.withLock {
            guard !destroyed, let handler else { return }
            handler(event)
        }
        // A handler that called fork() returns here in the child too, where this thread
        // is the only one and a copy of the parent's network thread: going on would
        // read the parent's sockets, steal its epoll events and write into its
        // conversations. That child had to exec or _exit inside the callback; if it
        // returns, it ends here, as a child whose exec failed conventionally does.
        if loop.processID != getpid() { _exit(127) }
    }

    var asksForTurns: Bool { reportsTurns.load(ordering: .relaxed) }
}

