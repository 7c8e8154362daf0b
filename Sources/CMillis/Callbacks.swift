import MillisCore

public typealias Handle = UnsafeMutableRawPointer
/// One C function type per event of millis.h (millis_<event>_cb), spelled once: the
/// exports take them and the table holds them.
public typealias OpenCallback = @convention(c) (Handle?, UnsafeMutableRawPointer?) -> Void
public typealias ReadyCallback = @convention(c) (Handle?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void
public typealias SessionEndedCallback = @convention(c) (Handle?, UnsafeMutableRawPointer?) -> Void
public typealias AudioCallback = @convention(c) (Handle?, UnsafePointer<UInt8>?, UInt, UnsafeMutableRawPointer?) -> Void
public typealias ResponseTextCallback = @convention(c) (Handle?, UnsafePointer<CChar>?, Int32, UnsafeMutableRawPointer?) -> Void
public typealias TranscriptCallback = @convention(c) (Handle?, UnsafePointer<CChar>?, Int32, UnsafeMutableRawPointer?) -> Void
public typealias FunctionCallback = @convention(c) (Handle?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void
public typealias LatencyCallback = @convention(c) (Handle?, Double, UnsafeMutableRawPointer?) -> Void
public typealias AgentStateCallback = @convention(c) (Handle?, Int32, UnsafeMutableRawPointer?) -> Void
public typealias CloseCallback = @convention(c) (Handle?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void
public typealias ErrorCallback = @convention(c) (Handle?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void
public typealias MessageCallback = @convention(c) (Handle?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void
public typealias LogCallback = @convention(c) (Handle?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void
public typealias ReconnectingCallback = @convention(c) (Handle?, UInt32, UInt32, UnsafeMutableRawPointer?) -> Void
public typealias ReconnectedCallback = @convention(c) (Handle?, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void
public typealias AnalyzerCallback = @convention(c) (Handle?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void
public typealias UserAudioReadyCallback = @convention(c) (Handle?, UnsafeMutableRawPointer?, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void
public typealias InputEndedCallback = @convention(c) (Handle?, UnsafeMutableRawPointer?) -> Void
public typealias TurnCallback = @convention(c) (Handle?, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void

/// A C function and the user_data that goes back to it.
struct Registration<F> {
    var function: F?
    var userData: UnsafeMutableRawPointer?
}

/// One registration per event of millis.h. Guarded by the client's dispatch lock.
struct CallbackTable {
    var open = Registration<OpenCallback>()
    var ready = Registration<ReadyCallback>()
    var sessionEnded = Registration<SessionEndedCallback>()
    var audio = Registration<AudioCallback>()
    var responseText = Registration<ResponseTextCallback>()
    var transcript = Registration<TranscriptCallback>()
    var function = Registration<FunctionCallback>()
    var latency = Registration<LatencyCallback>()
    var agentState = Registration<AgentStateCallback>()
    var close = Registration<CloseCallback>()
    var errorMessage = Registration<ErrorCallback>()
    var message = Registration<MessageCallback>()
    var log = Registration<LogCallback>()
    var reconnecting = Registration<ReconnectingCallback>()
    var reconnected = Registration<ReconnectedCallback>()
    var analyzer = Registration<AnalyzerCallback>()
    var userAudioReady = Registration<UserAudioReadyCallback>()
    var inputEnded = Registration<InputEndedCallback>()
    var turn = Registration<TurnCallback>()
}

extension ClientHandle {
    /// Queues `event` when the client keeps a queue, and calls the C callback registered
    /// for it (on the network thread, under the dispatch lock). Strings are borrowed for the call's duration, as millis.h says.
    func deliver(_ event: SessionEvent) {
        events?.push(event)
        let c = Unmanaged.passUnretained(self).toOpaque()
        let t = callbacks
        switch event {
        case .open:
            t.open.function?(c, t.open.userData)
        case .ready(let sessionId, let payload):
            guard let f = t.ready.function else { return }
            sessionId.withCString { id in payload.withCString { f(c, id, $0, t.ready.userData) } }
        case .sessionEnded:
            t.sessionEnded.function?(c, t.sessionEnded.userData)
        case .audio(let pcm):
            guard let f = t.audio.function else { return }
            pcm.withUnsafeBufferPointer { f(c, $0.baseAddress, UInt($0.count), t.audio.userData) }
        case .responseText(let text, let isFinal):
            guard let f = t.responseText.function else { return }
            text.withCString { f(c, $0, isFinal ? 1 : 0, t.responseText.userData) }
        case .transcript(let text, let isFinal):
            guard let f = t.transcript.function else { return }
            text.withCString { f(c, $0, isFinal ? 1 : 0, t.transcript.userData) }
        case .function(let text, let name, let params):
            guard let f = t.function.function else { return }
            text.withCString { tx in name.withCString { n in params.withCString { f(c, tx, n, $0, t.function.userData) } } }
        case .latency(let ms):
            t.latency.function?(c, ms, t.latency.userData)
        case .agentState(let state):
            t.agentState.function?(c, state.rawValue, t.agentState.userData)
        case .close(let code, let reason):
            guard let f = t.close.function else { return }
            reason.withCString { f(c, Int32(code), $0, t.close.userData) }
        case .error(let status, let message):
            guard let f = t.errorMessage.function else { return }
            message.withCString { f(c, status.rawValue, $0, t.errorMessage.userData) }
        case .message(let method, let json):
            guard let f = t.message.function else { return }
            method.withCString { m in json.withCString { f(c, m, $0, t.message.userData) } }
        case .log(let level, let message):
            guard let f = t.log.function else { return }
            message.withCString { f(c, level.rawValue, $0, t.log.userData) }
        case .reconnecting(let attempt, let delay):
            t.reconnecting.function?(c, UInt32(clamping: attempt), UInt32(clamping: delay), t.reconnecting.userData)
        case .reconnected(let sessionId):
            guard let f = t.reconnected.function else { return }
            sessionId.withCString { f(c, $0, t.reconnected.userData) }
        case .analyzer:
            guard let f = t.analyzer.function else { return }
            f(c, agentAnalyserHandle.pointer, t.analyzer.userData)
        case .userAudioReady(let stream):
            guard let f = t.userAudioReady.function else { return }
            let user = userAnalyserHandle.pointer
            stream.withCString { f(c, user, $0, t.userAudioReady.userData) }
        case .inputEnded:
            t.inputEnded.function?(c, t.inputEnded.userData)
        case .turn(let json):
            guard let f = t.turn.function else { return }
            json.withCString { f(c, $0, t.turn.userData) }
        }
    }
}

/// Registers a callback; the shape of every millis_client_on_* function.
private func register<F>(_ c: Handle?, _ keyPath: WritableKeyPath<CallbackTable, Registration<F>>,
                         _ function: F?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    ClientHandle.run(c) { handle in
        handle.core.withDispatchLock {
            handle.callbacks[keyPath: keyPath] = Registration(function: function, userData: userData)
        }
        return MillisStatus.ok.rawValue
    }
}

@_cdecl("millis_client_on_open")
public func millis_client_on_open(_ c: Handle?, _ cb: OpenCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.open, cb, ud)
}

@_cdecl("millis_client_on_ready")
public func millis_client_on_ready(_ c: Handle?, _ cb: ReadyCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.ready, cb, ud)
}

@_cdecl("millis_client_on_session_ended")
public func millis_client_on_session_ended(_ c: Handle?, _ cb: SessionEndedCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.sessionEnded, cb, ud)
}

@_cdecl("millis_client_on_audio")
public func millis_client_on_audio(_ c: Handle?, _ cb: AudioCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.audio, cb, ud)
}

@_cdecl("millis_client_on_response_text")
public func millis_client_on_response_text(_ c: Handle?, _ cb: ResponseTextCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.responseText, cb, ud)
}

@_cdecl("millis_client_on_transcript")
public func millis_client_on_transcript(_ c: Handle?, _ cb: TranscriptCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.transcript, cb, ud)
}

@_cdecl("millis_client_on_function")
public func millis_client_on_function(_ c: Handle?, _ cb: FunctionCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.function, cb, ud)
}

@_cdecl("millis_client_on_latency")
public func millis_client_on_latency(_ c: Handle?, _ cb: LatencyCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.latency, cb, ud)
}

@_cdecl("millis_client_on_agent_state")
public func millis_client_on_agent_state(_ c: Handle?, _ cb: AgentStateCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.agentState, cb, ud)
}

@_cdecl("millis_client_on_close")
public func millis_client_on_close(_ c: Handle?, _ cb: CloseCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.close, cb, ud)
}

@_cdecl("millis_client_on_error")
public func millis_client_on_error(_ c: Handle?, _ cb: ErrorCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.errorMessage, cb, ud)
}

@_cdecl("millis_client_on_message")
public func millis_client_on_message(_ c: Handle?, _ cb: MessageCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.message, cb, ud)
}

@_cdecl("millis_client_on_log")
public func millis_client_on_log(_ c: Handle?, _ cb: LogCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.log, cb, ud)
}

@_cdecl("millis_client_on_reconnecting")
public func millis_client_on_reconnecting(_ c: Handle?, _ cb: ReconnectingCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.reconnecting, cb, ud)
}

@_cdecl("millis_client_on_reconnected")
public func millis_client_on_reconnected(_ c: Handle?, _ cb: ReconnectedCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.reconnected, cb, ud)
}

@_cdecl("millis_client_on_analyzer")
public func millis_client_on_analyzer(_ c: Handle?, _ cb: AnalyzerCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.analyzer, cb, ud)
}

@_cdecl("millis_client_on_user_audio_ready")
public func millis_client_on_user_audio_ready(_ c: Handle?, _ cb: UserAudioReadyCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.userAudioReady, cb, ud)
}

@_cdecl("millis_client_on_input_ended")
public func millis_client_on_input_ended(_ c: Handle?, _ cb: InputEndedCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    register(c, \.inputEnded, cb, ud)
}

@_cdecl("millis_client_on_turn")
public func millis_client_on_turn(_ c: Handle?, _ cb: TurnCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    // The user's voice activity is analysed only for someone: this callback, the event
    // queue (which keeps every event) or a recording.
    if let handle = ClientHandle.local(c) {
        handle.core.reportsTurns.store(cb != nil || handle.events != nil, ordering: .relaxed)
    }
    return register(c, \.turn, cb, ud)
}
