#if canImport(Glibc)
import Glibc
#endif
import CMillisHeader
import MillisCore

// The event queue (include/millis.h: "Event queue").

/// The payloads of the event a client's program took last, which millis.h lends it
/// until its next millis_client_next_event or the client's destroy.
final class LentEvent {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit { release() }

    func release() {
        for pointer in allocations { free(pointer) }
        allocations.removeAll(keepingCapacity: true)
    }

    func string(_ s: String) -> UnsafePointer<CChar>? {
        guard let copy = mallocCString(s) else { return nil }
        allocations.append(UnsafeMutableRawPointer(copy))
        return UnsafePointer(copy)
    }

    func bytes(_ b: [UInt8]) -> UnsafePointer<UInt8>? {
        // malloc(0) may return NULL; an empty payload still gets a valid pointer.
        guard let copy = malloc(max(1, b.count)) else { return nil }
        b.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(copy), byteCount: b.count) }
        allocations.append(copy)
        return UnsafePointer(copy.assumingMemoryBound(to: UInt8.self))
    }
}

extension ClientHandle {
    /// `event` as millis.h's struct, its payloads lent from `lent`.
    func cEvent(_ event: SessionEvent, _ lent: LentEvent) -> millis_event {
        var e = millis_event()
        e.size = MemoryLayout<millis_event>.size
        e.status = MILLIS_OK
        e.level = MILLIS_LOG_NONE
        e.agent_state = MILLIS_AGENT_IDLE
        switch event {
        case .open:
            e.type = MILLIS_EVENT_OPEN
        case .ready(let sessionId, let payload):
            e.type = MILLIS_EVENT_READY
            e.session_id = lent.string(sessionId)
            e.json = lent.string(payload)
        case .sessionEnded:
            e.type = MILLIS_EVENT_SESSION_ENDED
        case .audio(let pcm):
            e.type = MILLIS_EVENT_AUDIO
            e.audio = lent.bytes(pcm)
            e.audio_bytes = pcm.count
        case .responseText(let text, let isFinal):
            e.type = MILLIS_EVENT_RESPONSE_TEXT
            e.text = lent.string(text)
            e.is_final = isFinal ? 1 : 0
        case .transcript(let text, let isFinal):
            e.type = MILLIS_EVENT_TRANSCRIPT
            e.text = lent.string(text)
            e.is_final = isFinal ? 1 : 0
        case .function(let text, let name, let params):
            e.type = MILLIS_EVENT_FUNCTION
            e.text = lent.string(text)
            e.name = lent.string(name)
            e.json = lent.string(params)
        case .latency(let ms):
            e.type = MILLIS_EVENT_LATENCY
            e.latency_ms = ms
        case .agentState(let state):
            e.type = MILLIS_EVENT_AGENT_STATE
            e.agent_state = millis_agent_state(rawValue: UInt32(bitPattern: state.rawValue))
        case .close(let code, let reason):
            e.type = MILLIS_EVENT_CLOSE
            e.code = Int32(clamping: code)
            e.message = lent.string(reason)
        case .error(let status, let message):
            e.type = MILLIS_EVENT_ERROR
            e.status = millis_status(rawValue: UInt32(bitPattern: status.rawValue))
            e.message = lent.string(message)
        case .message(let method, let json):
            e.type = MILLIS_EVENT_MESSAGE
            e.name = lent.string(method)
            e.json = lent.string(json)
        case .log(let level, let message):
            e.type = MILLIS_EVENT_LOG
            e.level = millis_log_level(rawValue: UInt32(bitPattern: level.rawValue))
            e.message = lent.string(message)
        case .reconnecting(let attempt, let delay):
            e.type = MILLIS_EVENT_RECONNECTING
            e.attempt = UInt32(clamping: attempt)
            e.delay_ms = UInt32(clamping: delay)
        case .reconnected(let sessionId):
            e.type = MILLIS_EVENT_RECONNECTED
            e.session_id = lent.string(sessionId)
        case .analyzer:
            e.type = MILLIS_EVENT_ANALYZER
            e.analyser = OpaquePointer(agentAnalyserHandle.pointer)
        case .userAudioReady(let stream):
            e.type = MILLIS_EVENT_USER_AUDIO_READY
            e.analyser = OpaquePointer(userAnalyserHandle.pointer)
            e.json = lent.string(stream)
        case .inputEnded:
            e.type = MILLIS_EVENT_INPUT_ENDED
        case .turn(let json):
            e.type = MILLIS_EVENT_TURN
            e.json = lent.string(json)
        }
        return e
    }
}

@_cdecl("millis_config_set_event_queue")
public func millis_config_set_event_queue(_ cfg: UnsafeMutableRawPointer?, _ maxBytes: UInt) -> Int32 {
    guard let handle = ConfigHandle.from(cfg) else { return MillisStatus.invalidArgument.rawValue }
    return handle.lastError.capture { () throws(MillisError) in
        let range = EventQueue.limitRange
        guard maxBytes == 0 || Int(exactly: maxBytes).map(range.contains) == true else {
            throw MillisError(.invalidArgument, "event queue limit \(maxBytes) bytes is out of range: use 0 (no queue) or \(range.lowerBound) to \(range.upperBound)")
        }
        handle.eventQueueBytes = Int(maxBytes)
    }
}

@_cdecl("millis_client_next_event")
public func millis_client_next_event(_ c: UnsafeMutableRawPointer?, _ event: UnsafeMutablePointer<millis_event>?,
                                     _ timeoutMs: Int32) -> Int32 {
    // A parent's client in a forked child is refused: its eventfd is the parent's too.
    ClientHandle.run(c) { handle in handle.call { () throws(MillisError) in
        guard let event else { throw MillisError(.invalidArgument, "event is NULL: pass a millis_event initialised with MILLIS_EVENT_INIT") }
        // Only `size` is read before it is checked: the caller's struct may be older.
        let size = UnsafeRawPointer(event).load(as: Int.self)
        guard size >= MemoryLayout<millis_event>.size else {
            throw MillisError(.invalidArgument, "event->size is \(size), smaller than this library's millis_event (\(MemoryLayout<millis_event>.size) bytes): initialise it with MILLIS_EVENT_INIT")
        }
        guard let queue = handle.events else {
            throw MillisError(.invalidState, "this client keeps no event queue: call millis_config_set_event_queue on its configuration before millis_client_create")
        }
        guard !handle.core.isCallbackThread else {
            throw MillisError(.invalidState, "millis_client_next_event was called from inside a callback, on the network thread, which must not wait: take events from your own thread or loop")
        }
        handle.lent.withLock { lent in lent.release() }
        guard let next = queue.next(timeoutMilliseconds: timeoutMs) else {
            var none = millis_event()
            none.size = MemoryLayout<millis_event>.size
            none.type = MILLIS_EVENT_NONE
            event.pointee = none
            return
        }
        event.pointee = handle.lent.withLock { lent in handle.cEvent(next, lent) }
    } }
}

@_cdecl("millis_client_event_fd")
public func millis_client_event_fd(_ c: UnsafeRawPointer?) -> Int32 {
    ClientHandle.local(c)?.events?.fd ?? -1
}
