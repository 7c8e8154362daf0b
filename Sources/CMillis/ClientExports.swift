#if canImport(Glibc)
import Glibc
#endif
import MillisCore

/// The object behind a `millis_client *`.
final class ClientHandle {
    let core: Client
    let lastError = LastError()
    /// Guarded by `core`'s dispatch lock.
    var callbacks = CallbackTable()
    /// The events kept for millis_client_next_event (millis_config_set_event_queue).
    let events: EventQueue?
    /// The payloads of the event the program took last.
    let lent = Locked(LentEvent())
    private let agentHandle = Locked<AnalyserHandle?>(nil)
    private let userHandle = Locked<AnalyserHandle?>(nil)

    /// The analysers' C handles, each created with its first request (only then is its
    /// analyser fed) and kept until destroy, so the pointer an application holds stays
    /// valid for the client's life.
    var agentAnalyserHandle: AnalyserHandle { Self.handle(agentHandle) { core.agentAnalyser } }
    var userAnalyserHandle: AnalyserHandle { Self.handle(userHandle) { core.userAnalyser } }

    private static func handle(_ slot: Locked<AnalyserHandle?>, _ make: () -> Analyser) -> AnalyserHandle {
        slot.withLock { h in
            if let h { return h }
            let created = AnalyserHandle(make(), clientProcess: getpid())
            h = created
            return created
        }
    }

    init(core: Client, events: EventQueue?) {
        self.core = core
        self.events = events
    }

    static func from(_ pointer: UnsafeRawPointer?) -> ClientHandle? {
        pointer.map { Unmanaged<ClientHandle>.fromOpaque($0).takeUnretainedValue() }
    }

    /// The handle, when the calling process created it; nil for NULL and, in a child
    /// made by fork(), for a client of the parent (see `Client.belongsToThisProcess`).
    /// Asked before anything else: such a client's locks may have been held by one of
    /// the parent's threads at the fork, so its getters answer their neutral value
    /// without reading anything behind a lock.
    static func local(_ pointer: UnsafeRawPointer?) -> ClientHandle? {
        guard let handle = from(pointer), handle.core.belongsToThisProcess else { return nil }
        return handle
    }

    /// Runs a call on the client behind `pointer`: MILLIS_ERR_INVALID_ARGUMENT for NULL,
    /// MILLIS_ERR_INVALID_STATE for a client of another process (its message, from
    /// millis_client_last_error, is static: recording it would take the client's lock).
    static func run(_ pointer: UnsafeRawPointer?, _ body: (ClientHandle) -> Int32) -> Int32 {
        guard let handle = from(pointer) else { return MillisStatus.invalidArgument.rawValue }
        guard handle.core.belongsToThisProcess else { return MillisStatus.invalidState.rawValue }
        return body(handle)
    }

    /// Runs an API call, recording its failure as the client's last error.
    func call(_ body: () throws(MillisError) -> Void) -> Int32 {
        lastError.capture(body)
    }
}

@_cdecl("millis_client_create")
public func millis_client_create(_ cfg: UnsafeRawPointer?, _ err: UnsafeMutablePointer<Int32>?) -> UnsafeMutableRawPointer? {
    guard let config = ConfigHandle.from(cfg) else {
        err?.pointee = MillisStatus.invalidArgument.rawValue
        return nil
    }
    do {
        let events = config.eventQueueBytes > 0 ? try EventQueue(limitBytes: config.eventQueueBytes) : nil
        let handle = ClientHandle(core: try Client(config: config.config), events: events)
        // The queue keeps every event, turns included: they are analysed for it.
        handle.core.reportsTurns.store(events != nil, ordering: .relaxed)
        // The handler holds the handle until destroy clears it.
        handle.core.setEventHandler { [handle] event in handle.deliver(event) }
        err?.pointee = MillisStatus.ok.rawValue
        return Unmanaged.passRetained(handle).toOpaque()
    } catch {
        config.lastError.set(error.message)
        err?.pointee = error.status.rawValue
        return nil
    }
}

@_cdecl("millis_client_destroy")
public func millis_client_destroy(_ c: UnsafeMutableRawPointer?) {
    guard let c else { return }
    // A client of the parent process is forgotten, not released: releasing it could run
    // deinitialisers over what the parent's network thread was using at the fork.
    guard ClientHandle.local(c) != nil else { return }
    let handle = Unmanaged<ClientHandle>.fromOpaque(c).takeRetainedValue()
    handle.core.destroy()
}

@_cdecl("millis_client_last_error")
public func millis_client_last_error(_ c: UnsafeRawPointer?) -> UnsafePointer<CChar>? {
    guard let handle = ClientHandle.from(c) else { return nil }
    guard handle.core.belongsToThisProcess else { return staticCString(Client.otherProcessMessage) }
    return handle.lastError.pointer
}

@_cdecl("millis_client_start")
public func millis_client_start(_ c: UnsafeMutableRawPointer?, _ options: UnsafePointer<CChar>?) -> Int32 {
    ClientHandle.run(c) { handle in handle.call { () throws(MillisError) in
        try handle.core.start(try StartOptions(json: try readString(options, "options JSON")))
    } }
}

@_cdecl("millis_client_start_agent")
public func millis_client_start_agent(_ c: UnsafeMutableRawPointer?, _ agentId: UnsafePointer<CChar>?) -> Int32 {
    ClientHandle.run(c) { handle in handle.call { () throws(MillisError) in
        try handle.core.start(try StartOptions(agentId: try readString(agentId, "agent id")))
    } }
}

@_cdecl("millis_client_stop")
public func millis_client_stop(_ c: UnsafeMutableRawPointer?) -> Int32 {
    ClientHandle.run(c) { handle in
        handle.core.stop()
        return MillisStatus.ok.rawValue
    }
}

@_cdecl("millis_client_mute")
public func millis_client_mute(_ c: UnsafeMutableRawPointer?) -> Int32 {
    ClientHandle.run(c) { handle in
        handle.core.setMuted(true)
        return MillisStatus.ok.rawValue
    }
}

@_cdecl("millis_client_unmute")
public func millis_client_unmute(_ c: UnsafeMutableRawPointer?) -> Int32 {
    ClientHandle.run(c) { handle in
        handle.core.setMuted(false)
        return MillisStatus.ok.rawValue
    }
}

@_cdecl("millis_client_is_muted")
public func millis_client_is_muted(_ c: UnsafeRawPointer?) -> Int32 {
    (ClientHandle.local(c)?.core.isMuted ?? false) ? 1 : 0
}

@_cdecl("millis_client_send_audio")
public func millis_client_send_audio(_ c: UnsafeMutableRawPointer?, _ pcm: UnsafeRawPointer?, _ bytes: UInt) -> Int32 {
    ClientHandle.run(c) { handle in handle.call { () throws(MillisError) in
        guard pcm != nil || bytes == 0 else {
            throw MillisError(.invalidArgument, "pcm is NULL but bytes is \(bytes)")
        }
        guard let count = Int(exactly: bytes) else { throw MillisError(.invalidArgument, "byte count \(bytes) is too large") }
        try handle.core.sendAudio(UnsafeRawBufferPointer(start: pcm, count: count))
    } }
}

@_cdecl("millis_client_send_json")
public func millis_client_send_json(_ c: UnsafeMutableRawPointer?, _ json: UnsafePointer<CChar>?) -> Int32 {
    ClientHandle.run(c) { handle in handle.call { () throws(MillisError) in try handle.core.sendJSON(try readString(json, "JSON")) } }
}

@_cdecl("millis_client_session_id")
public func millis_client_session_id(_ c: UnsafeRawPointer?) -> UnsafeMutablePointer<CChar>? {
    guard let id = ClientHandle.local(c)?.core.sessionId, !id.isEmpty else { return nil }
    return mallocCString(id)
}

@_cdecl("millis_client_connection_state")
public func millis_client_connection_state(_ c: UnsafeRawPointer?) -> Int32 {
    ClientHandle.local(c)?.core.connectionState.rawValue ?? ConnectionState.idle.rawValue
}

@_cdecl("millis_client_agent_state")
public func millis_client_agent_state(_ c: UnsafeRawPointer?) -> Int32 {
    ClientHandle.local(c)?.core.agentState.rawValue ?? AgentState.idle.rawValue
}

@_cdecl("millis_client_stats_json")
public func millis_client_stats_json(_ c: UnsafeRawPointer?) -> UnsafeMutablePointer<CChar>? {
    guard let handle = ClientHandle.local(c) else { return nil }
    return mallocCString(handle.core.statsJSON)
}
