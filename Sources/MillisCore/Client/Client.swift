/// One client: a conversation at a time with a Millis agent. Public methods may be
/// called from any thread, including from inside its event handler: they check their
/// input here and hand the work to the network loop, which alone touches the session
/// and the connection.
public final class Client: @unchecked Sendable {
    public let config: ClientConfig
    let loop: NetworkLoop

    /// What callers may read at any time; the loop publishes it after every input.
    struct Snapshot {
        /// A conversation was started and its close has not been reported yet.
        var busy = false
        var connectionState: ConnectionState = .idle
        var agentState: AgentState = .idle
        var sessionId: String?
        var sessionStats = SessionStats()
        /// Audio refused by `sendAudio` before the session was ready.
        var droppedFrames = 0
        var droppedBytes = 0
        var finishedConversations = 0
        var muted = false
    }
    private let snapshot = Locked(Snapshot())

    private let dispatchLock = RecursiveLock()
    // Guarded by dispatchLock.
    private var handler: ((SessionEvent) -> Void)?
    private var destroyed = false

    // Network-loop thread only.
    var session: Session
    var connection: Connection?
    var scheduledDeadline: UInt64?

    public init(config: ClientConfig) throws(MillisError) {
        try config.validateForClient()
        self.config = config
        self.loop = NetworkLoop.shared
        var settings = Session.Settings(
            frameBytes: config.frameBytes,
            readyTimeoutNanoseconds: UInt64(config.readyTimeoutMilliseconds) * 1_000_000,
            endpointDescription: config.endpoint.url)
        settings.publicKey = config.publicKey
        settings.reconnectAttempts = config.reconnectAttempts
        settings.reconnectInitialDelayNanoseconds = UInt64(config.reconnectInitialDelayMilliseconds) * 1_000_000
        settings.reconnectMaxDelayNanoseconds = UInt64(config.reconnectMaxDelayMilliseconds) * 1_000_000
        settings.sendQueueLimitBytes = config.sendQueueBytes
        // Each client its own jitter, so that many dropped at once do not return at once.
        settings.jitterSeed = UInt64.random(in: 1...UInt64.max)
        session = Session(settings: settings)
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
        let claimed = snapshot.withLock { s -> Bool in
            guard !s.busy else { return false }
            s.busy = true
            s.connectionState = .connecting
            return true
        }
        guard claimed else {
            throw MillisError(.invalidState, "a conversation is already under way: call millis_client_stop and wait for onclose before starting again")
        }
        loop.post(.start(self, options))
    }

    public func stop() {
        guard snapshot.withLock({ $0.busy }) else { return }
        loop.post(.stop(self))
    }

    public func setMuted(_ muted: Bool) {
        snapshot.withLock { $0.muted = muted }
        loop.post(.mute(self, muted))
    }

    public var isMuted: Bool { snapshot.withLock { $0.muted } }

    public func sendAudio(_ pcm: UnsafeRawBufferPointer) throws(MillisError) {
        guard pcm.count % 2 == 0 else {
            throw MillisError(.invalidArgument, "audio of \(pcm.count) bytes: PCM16 needs an even number of bytes")
        }
        guard config.audioMode == .application || config.audioMode == .default else {
            throw MillisError(.invalidState, "millis_client_send_audio is for application audio mode")
        }
        let ready = snapshot.withLock { s -> Bool in
            if s.connectionState == .ready { return true }
            s.droppedBytes += pcm.count
            s.droppedFrames += (pcm.count + config.frameBytes - 1) / config.frameBytes
            return false
        }
        guard ready else {
            throw MillisError(.notReady, "session not ready: audio is sent from onready on; this audio was dropped")
        }
        guard pcm.count > 0 else { return }
        loop.post(.audio(self, Array(pcm)))
    }

    public func sendJSON(_ text: String) throws(MillisError) {
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
        loop.post(.json(self, text))
    }

    public var sessionId: String? { snapshot.withLock { $0.sessionId } }
    public var connectionState: ConnectionState { snapshot.withLock { $0.connectionState } }
    public var agentState: AgentState { snapshot.withLock { $0.agentState } }
    public var stats: SessionStats {
        snapshot.withLock { s in
            var stats = s.sessionStats
            stats.audioFramesDropped += s.droppedFrames
            stats.audioBytesDropped += s.droppedBytes
            return stats
        }
    }

    /// Ends the client: no event is dispatched after this returns (it waits for a
    /// handler running on another thread), and the connection is dropped.
    public func destroy() {
        dispatchLock.withLock {
            destroyed = true
            handler = nil
        }
        loop.post(.destroy(self))
    }

    // MARK: Network loop side

    /// Copies the session's state for readers on other threads. Called before the
    /// actions of an input run, so handlers see the state their event belongs to; once
    /// a conversation has finished, a new start is allowed (even from the close handler).
    func publish() {
        let s = session
        snapshot.withLock { snap in
            if s.finishedConversations != snap.finishedConversations {
                snap.finishedConversations = s.finishedConversations
                snap.busy = false
            }
            // Between start() and the loop taking it up, the session is still idle.
            snap.connectionState = s.connectionState == .idle && snap.busy ? .connecting : s.connectionState
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
    }
}
