import MillisCore

/// The object behind a `millis_config *`.
final class ConfigHandle {
    var config = ClientConfig()
    let lastError = LastError()
    /// millis_config_set_event_queue's limit; 0: the clients keep no queue.
    var eventQueueBytes = 0

    static func from(_ pointer: UnsafeRawPointer?) -> ConfigHandle? {
        pointer.map { Unmanaged<ConfigHandle>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Runs a setter on the config behind `cfg`, recording its failure there; a NULL
    /// config has nowhere to record one and gets MILLIS_ERR_INVALID_ARGUMENT.
    static func update(_ cfg: UnsafeMutableRawPointer?,
                       _ body: (inout ClientConfig) throws(MillisError) -> Void) -> Int32 {
        guard let handle = from(cfg) else { return MillisStatus.invalidArgument.rawValue }
        return handle.lastError.capture { () throws(MillisError) in try body(&handle.config) }
    }
}

@_cdecl("millis_config_create")
public func millis_config_create() -> UnsafeMutableRawPointer? {
    Unmanaged.passRetained(ConfigHandle()).toOpaque()
}

@_cdecl("millis_config_destroy")
public func millis_config_destroy(_ cfg: UnsafeMutableRawPointer?) {
    guard let cfg else { return }
    Unmanaged<ConfigHandle>.fromOpaque(cfg).release()
}

@_cdecl("millis_config_last_error")
public func millis_config_last_error(_ cfg: UnsafeRawPointer?) -> UnsafePointer<CChar>? {
    ConfigHandle.from(cfg)?.lastError.pointer
}

@_cdecl("millis_config_set_public_key")
public func millis_config_set_public_key(_ cfg: UnsafeMutableRawPointer?, _ key: UnsafePointer<CChar>?) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in try config.setPublicKey(try readString(key, "public key")) }
}

@_cdecl("millis_config_set_endpoint")
public func millis_config_set_endpoint(_ cfg: UnsafeMutableRawPointer?, _ endpoint: UnsafePointer<CChar>?) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in
        try config.setEndpoint(try readOptionalString(endpoint, "endpoint"))
    }
}

@_cdecl("millis_config_set_log_level")
public func millis_config_set_log_level(_ cfg: UnsafeMutableRawPointer?, _ level: Int32) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in
        guard let value = LogLevel(rawValue: level) else {
            throw MillisError(.invalidArgument, "log level \(level) is not a millis_log_level (0 none … 4 debug)")
        }
        config.logLevel = value
    }
}

@_cdecl("millis_config_set_audio_mode")
public func millis_config_set_audio_mode(_ cfg: UnsafeMutableRawPointer?, _ mode: Int32) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in
        guard let value = AudioMode(rawValue: mode) else {
            throw MillisError(.invalidArgument, "audio mode \(mode) is not a millis_audio_mode (0 default, 1 application, 2 device)")
        }
        config.audioMode = value
    }
}

@_cdecl("millis_config_set_frame_ms")
public func millis_config_set_frame_ms(_ cfg: UnsafeMutableRawPointer?, _ ms: UInt32) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in try config.setFrameMilliseconds(Int(ms)) }
}

@_cdecl("millis_config_set_max_message_bytes")
public func millis_config_set_max_message_bytes(_ cfg: UnsafeMutableRawPointer?, _ bytes: UInt) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in try config.setMaxMessageBytes(Int(clamping: bytes)) }
}

@_cdecl("millis_config_set_ready_timeout_ms")
public func millis_config_set_ready_timeout_ms(_ cfg: UnsafeMutableRawPointer?, _ ms: UInt32) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in try config.setReadyTimeoutMilliseconds(Int(ms)) }
}

@_cdecl("millis_config_set_reconnect")
public func millis_config_set_reconnect(_ cfg: UnsafeMutableRawPointer?, _ attempts: UInt32, _ initialMs: UInt32, _ maxMs: UInt32) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in
        try config.setReconnect(attempts: Int(attempts), initialDelayMilliseconds: Int(initialMs), maxDelayMilliseconds: Int(maxMs))
    }
}

@_cdecl("millis_config_set_send_queue_bytes")
public func millis_config_set_send_queue_bytes(_ cfg: UnsafeMutableRawPointer?, _ bytes: UInt) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in try config.setSendQueueBytes(Int(clamping: bytes)) }
}

@_cdecl("millis_config_set_ca_file")
public func millis_config_set_ca_file(_ cfg: UnsafeMutableRawPointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in
        try config.setCAFile(try readOptionalString(path, "CA file path"))
    }
}

@_cdecl("millis_config_set_tls_verification_disabled_insecure")
public func millis_config_set_tls_verification_disabled_insecure(_ cfg: UnsafeMutableRawPointer?, _ insecure: Int32) -> Int32 {
    ConfigHandle.update(cfg) { config in config.tlsVerificationDisabled = insecure != 0 }
}

@_cdecl("millis_config_add_header")
public func millis_config_add_header(_ cfg: UnsafeMutableRawPointer?, _ name: UnsafePointer<CChar>?,
                                     _ value: UnsafePointer<CChar>?) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in
        try config.addHeader(name: try readString(name, "header name"), value: try readString(value, "header value"))
    }
}

@_cdecl("millis_config_clear_headers")
public func millis_config_clear_headers(_ cfg: UnsafeMutableRawPointer?) -> Int32 {
    ConfigHandle.update(cfg) { config in config.clearHeaders() }
}
