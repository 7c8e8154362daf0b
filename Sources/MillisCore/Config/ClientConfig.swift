/// How audio reaches the library and leaves it; raw values match `millis_audio_mode`.
public enum AudioMode: Int32, Sendable {
    /// Device audio when a capture and a playback device open, else application.
    case `default` = 0
    case application = 1
    case device = 2
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
    public private(set) var reconnectAttempts = 5
    public private(set) var reconnectInitialDelayMilliseconds = 250
    public private(set) var reconnectMaxDelayMilliseconds = 8000
    public private(set) var sendQueueBytes = 512 * 1024
    /// PEM CA certificates to verify wss:// servers with; nil: the system's store.
    public private(set) var caFile: String?
    /// Certificate and host name verification off (DANGEROUS, loudly logged).
    public var tlsVerificationDisabled = false
    /// Device audio mode: devices, processing, period, prebuffer.
    public private(set) var audio = AudioSettings()
    /// Application audio mode: what send_audio takes and the audio callback gives.
    public var applicationAudioFormat = ApplicationAudioFormat.wire
    /// Added to the upgrade request, in order (ClientConfig+Headers.swift).
    public internal(set) var extraHeaders: [(name: String, value: String)] = []

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

    public mutating func setReconnect(attempts: Int, initialDelayMilliseconds: Int, maxDelayMilliseconds: Int) throws(MillisError) {
        guard (0...100).contains(attempts) else {
            throw MillisError(.invalidArgument, "reconnect attempts \(attempts) out of range: use 0 (off) to 100 (default 5)")
        }
        guard (10...60_000).contains(initialDelayMilliseconds) else {
            throw MillisError(.invalidArgument, "reconnect initial delay \(initialDelayMilliseconds) ms out of range: use 10 to 60000 ms (default 250)")
        }
        guard (initialDelayMilliseconds...600_000).contains(maxDelayMilliseconds) else {
            throw MillisError(.invalidArgument, "reconnect maximum delay \(maxDelayMilliseconds) ms out of range: use the initial delay (\(initialDelayMilliseconds)) to 600000 ms (default 8000)")
        }
        reconnectAttempts = attempts
        reconnectInitialDelayMilliseconds = initialDelayMilliseconds
        reconnectMaxDelayMilliseconds = maxDelayMilliseconds
    }

    public mutating func setSendQueueBytes(_ bytes: Int) throws(MillisError) {
        guard ((64 << 10)...(64 << 20)).contains(bytes) else {
            throw MillisError(.invalidArgument, "send queue \(bytes) bytes out of range: use 64 KiB to 64 MiB (default 512 KiB)")
        }
        sendQueueBytes = bytes
    }

    public mutating func setCAFile(_ path: String?) throws(MillisError) {
        if let path, path.isEmpty {
            throw MillisError(.invalidArgument, "CA file path is empty: pass the path of a PEM file, or NULL for the system's CA store")
        }
        caFile = path
    }

    public mutating func setAudioDevices(capture: String?, playback: String?) throws(MillisError) {
        for (name, what) in [(capture, "capture"), (playback, "playback")] {
            if let name, name.isEmpty || name.contains(where: { $0.isNewline }) {
                throw MillisError(.invalidArgument, "\(what) device name is empty or holds a line break: pass an ALSA PCM name such as \"default\" or \"hw:1,0\" (see millis_audio_devices_json), or NULL for \"default\"")
            }
        }
        audio.captureDevice = capture ?? "default"
        audio.playbackDevice = playback ?? "default"
    }

    public mutating func setAudioProcessing(echoCancellation: Bool, noiseSuppression: Bool, autoGainControl: Bool) {
        audio.echoCancellation = echoCancellation
        audio.noiseSuppression = noiseSuppression
        audio.autoGainControl = autoGainControl
    }

    public mutating func setEchoCanceller(_ canceller: EchoCanceller) {
        audio.echoCanceller = canceller
    }

    public mutating func setAudioPeriodMilliseconds(_ ms: Int) throws(MillisError) {
        guard [5, 10, 20].contains(ms) else {
            throw MillisError(.invalidArgument, "audio period \(ms) ms is not offered: use 5, 10 (default) or 20 ms")
        }
        audio.periodMilliseconds = ms
    }

    public mutating func setPlayoutPrebufferMilliseconds(_ ms: Int) throws(MillisError) {
        guard (0...2000).contains(ms) else {
            throw MillisError(.invalidArgument, "playout prebuffer \(ms) ms is out of range: use 0 to 2000 ms (default \(AudioSettings().prebufferMilliseconds))")
        }
        audio.prebufferMilliseconds = ms
    }

    /// Records every conversation (millis_config_set_recording).
    public private(set) var recording: (path: String, mono: Bool)?

    public mutating func setAudioInputFile(_ path: String?, fast: Bool) throws(MillisError) {
        if let path { _ = try AudioFileFormat(path: path, what: "audio input file") }
        audio.inputFile = path
        audio.inputFast = fast
    }

    public mutating func setAudioOutputFile(_ path: String?) throws(MillisError) {
        if let path { _ = try AudioFileFormat(path: path, what: "audio output file") }
        audio.outputFile = path
    }

    public mutating func setRecording(_ path: String?, mono: Bool) throws(MillisError) {
        if let path {
            _ = try AudioFileFormat(path: path, what: "recording")
            recording = (path, mono)
        } else {
            recording = nil
        }
    }

    /// Audio files stand in for devices: a client with one is in device audio mode.
    var usesAudioFiles: Bool { audio.inputFile != nil || audio.outputFile != nil }

    /// Bytes per outgoing frame: PCM16 mono at 16 kHz is 32 bytes per millisecond.
    public var frameBytes: Int { frameMilliseconds * 32 }

    /// Checks what a client needs before it can be created.
    public func validateForClient() throws(MillisError) {
        guard !publicKey.isEmpty else {
            throw MillisError(.invalidArgument, "config has no public key: call millis_config_set_public_key with the key from the Millis playground")
        }
        if usesAudioFiles && audioMode == .application {
            throw MillisError(.invalidState, "audio files are devices (millis_config_set_audio_input_file / _output_file), but the config asks for application audio mode: use MILLIS_AUDIO_MODE_DEVICE or MILLIS_AUDIO_MODE_DEFAULT, or remove the files")
        }
    }
}

extension Endpoint {
    /// Never used in practice: only if the default URL constant stopped parsing.
    static let fallback = try! Endpoint("ws://localhost/")
}
