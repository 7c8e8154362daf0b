/// One client's conversation as the network loop runs it: the session, its transport,
/// its devices, its timeline and recording, the converter of the agent's audio to the
/// application's format. The loop hands it the client's commands, its transport's
/// events, its devices' wake-ups and its deadlines; it feeds the session and performs
/// the actions that come out. Network-loop thread only, from the moment its client
/// (which creates it) first posts it to the loop.
final class Conversation {
    let config: ClientConfig
    let loop: NetworkLoop
    /// The client, set once at its creation. The two hold each other until the client
    /// is destroyed (`destroy` lets go): a weak reference would give the client a side
    /// table, and then every retain and release of it, several per audio frame, would
    /// take the runtime's slow path.
    var owner: (any ConversationOwner)?
    let session: Session
    var connection: Connection?
    /// The deadline the loop's timer heap holds for this conversation (the earliest
    /// pushed); nil when none is armed.
    var scheduledDeadline: UInt64?
    /// Device audio mode: the engine, from the start until the conversation ends.
    var audioEngine: AudioEngine?
    /// The conversion of the agent's audio from the wire format (nil: none needed).
    let outputConverter: ApplicationAudioConverter?
    let timeline = ConversationTimeline()

    init(config: ClientConfig, audioMode: AudioMode, loop: NetworkLoop) {
        self.config = config
        self.loop = loop
        let format = config.applicationAudioFormat
        outputConverter = audioMode == .application && format != .wire
            ? ApplicationAudioConverter(format: format, toWire: false) : nil
        var settings = Session.Settings(
            frameBytes: config.frameBytes,
            readyTimeoutNanoseconds: UInt64(config.readyTimeoutMilliseconds) * 1_000_000,
            endpointDescription: config.endpoint.url)
        settings.publicKey = config.publicKey
        settings.reconnectAttempts = config.reconnectAttempts
        settings.reconnectInitialDelayNanoseconds = UInt64(config.reconnectInitialDelayMilliseconds) * 1_000_000
        settings.reconnectMaxDelayNanoseconds = UInt64(config.reconnectMaxDelayMilliseconds) * 1_000_000
        settings.sendQueueLimitBytes = config.sendQueueBytes
        settings.externalPlayout = audioMode == .device
        // Each client its own jitter, so that many dropped at once do not return at once.
        settings.jitterSeed = UInt64.random(in: 1...UInt64.max)
        session = Session(settings: settings)
    }

    // MARK: Commands

    /// `engine`: the opened devices (device audio mode); `recorder`: the recording asked for.
    func start(_ options: StartOptions, engine: AudioEngine?, recorder: Recorder?, now: UInt64) {
        timeline.begin(now: now)
        if let engine { startAudio(engine) }
        if let recorder { attach(recorder, now: now) }
        drive { $0.start(options, now: now) }
    }

    func stop(now: UInt64) {
        drive { $0.stop(now: now) }
    }

    /// Application audio (wire format) for the session.
    func userAudio(_ pcm: [UInt8], now: UInt64) {
        let queued = connection?.webSocket?.pendingOutputCount ?? 0
        drive { $0.userAudio(pcm, now: now, queuedBytes: queued) }
    }

    func sendJSON(_ text: String) {
        drive { $0.sendJSON(text) }
    }

    func setMuted(_ muted: Bool) {
        session.setMuted(muted)
    }

    /// The client is destroyed: the transport closes at once, the devices stop and the
    /// files complete (the output file as the engine closes, then the recording), and the
    /// client is let go. Nothing is reported: its handler is gone.
    func destroy() {
        if let connection {
            connection.webSocket?.close(code: 1000, reason: "client destroyed")
            loop.flush(connection)
            loop.teardown(connection)
        }
        drive { $0.abandon() }
        stopAudio()
        timeline.detach()?.finishAndWait()
        owner = nil
    }

    /// The deadline the loop scheduled for it has come.
    func deadlineReached(now: UInt64) {
        scheduledDeadline = nil
        drive { $0.tick(now: now) }
    }

    // MARK: Session actions

    /// Feeds one input to the session and performs the resulting actions.
    func drive(_ input: (Session) -> [Session.Action]) {
        let actions = input(session)
        session.noteSendQueue(bytes: connection?.webSocket?.pendingOutputCount ?? 0)
        owner?.publish(session)
        for action in actions {
            perform(action)
        }
        // Only an earlier deadline is pushed: a later one (the playout end moves with
        // every agent frame) waits for the entry already in the heap, whose expiry
        // ticks the session and schedules what is then next. One push per frame would
        // fill the heap with stale entries at 50 a second per client.
        if let deadline = session.nextDeadline {
            if scheduledDeadline.map({ deadline < $0 }) ?? true {
                scheduledDeadline = deadline
                loop.schedule(deadline, for: self)
            }
        }
    }

    func perform(_ action: Session.Action) {
        switch action {
        case .connect:
            loop.connect(self)
        case .sendText(let text):
            guard let connection else { return }
            timeline.sentText(text, now: MonotonicClock.now())
            connection.webSocket?.sendText(text)
            loop.flush(connection)
        case .sendBinary(let pcm):
            guard let connection else { return }
            timeline.sentAudio(pcm, now: MonotonicClock.now(), analyse: owner?.asksForTurns ?? false)
            pcm.withUnsafeBytes { connection.webSocket?.sendBinary($0) }
            loop.flush(connection)
        case .closeHandshake(let code, let reason):
            guard let connection else { return }
            if connection.webSocket?.close(code: code, reason: reason) == true {
                loop.flush(connection)
            } else {
                loop.teardown(connection)
                drive { $0.transportClosed(code: code, reason: reason, now: MonotonicClock.now()) }
            }
        case .disconnect(let code, let reason):
            guard let connection else { return }
            if let code {
                connection.webSocket?.close(code: code, reason: reason)
                loop.flush(connection)
            }
            loop.teardown(connection)
        case .emit(let event):
            deliver(event)
        case .playout(let control):
            playout(control)
        case .enableCapture:
            audioEngine?.enableCapture()
        case .announceStreams:
            announceStreams()
        case .flushOutputConverter:
            flushOutputConverter()
        case .stopDevices:
            stopAudio()
        case .completeRecording(let code, let reason):
            completeRecording(code: code, reason: reason)
        }
    }

    /// Straight to the application: logs, and what the session's events do not carry.
    func emit(_ event: SessionEvent) {
        owner?.emit(event)
    }
}
