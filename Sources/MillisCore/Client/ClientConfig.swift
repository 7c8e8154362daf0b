/// How audio reaches the library and leaves it; raw values match `millis_audio_mode`.
public enum AudioMode: Int32, Sendable {
    case `default` = 0
    case application = 1
}

/// A client's settings. Setters check their input and throw with a message that says
/// what is wrong; an invalid value never replaces a valid one.
public struct ClientConfig: Sendable {
    public private(set) var publicKey = ""
    public private(set) var endpoint: Endpoint
    public var logLevel: LogLevel = .warn
    public var audioMode: AudioMode = .default
    public private(set) var frameMilliseconds = 20
    public private(set) var maxMessageBytes = 1 << 20
    public private(set) var readyTimeoutMilliseconds = 15_000

    public init() {
        // The default URL is a constant known to parse.
        endpoint = (try? Endpoint(Endpoint.defaultURL)) ?? Endpoint.fallback
    }

    public mutating func setPublicKey(_ key: String) throws(MillisError) {
        guard !key.isEmpty else {
            throw MillisError(.invalidArgument, "public key is empty: use the public key from the Millis playground")
        }
        publicKey = key
    }

    public mutating func setEndpoint(_ url: String?) throws(MillisError) {
        endpoint = try Endpoint(url ?? Endpoint.defaultURL)
    }

    public mutating func setFrameMilliseconds(_ ms: Int) throws(MillisError) {
        guard (5...200).contains(ms) else {
            throw MillisError(.invalidArgument, "frame duration \(ms) ms is out of range: use 5 to 200 ms (default 20)")
        }
        frameMilliseconds = ms
    }

    public mutating func setMaxMessageBytes(_ bytes: Int) throws(MillisError) {
        guard (1024...(64 << 20)).contains(bytes) else {
            throw MillisError(.invalidArgument, "maximum message size \(bytes) bytes is out of range: use 1 KiB to 64 MiB (default 1 MiB)")
        }
        maxMessageBytes = bytes
    }

    public mutating func setReadyTimeoutMilliseconds(_ ms: Int) throws(MillisError) {
        guard (100...600_000).contains(ms) else {
            throw MillisError(.invalidArgument, "ready timeout \(ms) ms is out of range: use 100 to 600000 ms (default 15000)")
        }
        readyTimeoutMilliseconds = ms
    }

    /// Bytes per outgoing frame: PCM16 mono at 16 kHz is 32 bytes per millisecond.
    public var frameBytes: Int { frameMilliseconds * 32 }

    /// Checks what a client needs before it can be created.
    public func validateForClient() throws(MillisError) {
        guard !publicKey.isEmpty else {
            throw MillisError(.invalidArgument, "config has no public key: call millis_config_set_public_key with the key from the Millis playground")
        }
    }
}

extension Endpoint {
    /// Never used in practice: only if the default URL constant stopped parsing.
    static let fallback = try! Endpoint("ws://localhost/")
}
