/// Counters over a client's life, reported by `millis_client_stats_json`.
public struct SessionStats: Equatable, Sendable {
    public var framesSent = 0
    public var bytesSent = 0
    public var framesReceived = 0
    public var bytesReceived = 0
    public var audioFramesDropped = 0
    public var audioBytesDropped = 0
    /// Frames not sent because the send queue was full (a server that stops reading).
    public var audioFramesDroppedBackpressure = 0
    /// Bytes waiting to be written to the socket, as last seen.
    public var sendQueueBytes = 0
    /// Successful reconnections.
    public var reconnects = 0
    public var messagesSent = 0
    public var messagesReceived = 0
    /// `pong` messages that answered no ping of ours (or carried data we never sent).
    public var pongsIgnored = 0
    /// WebSocket ping frames from the server, and those whose pong was replaced by the
    /// pong of a later ping before it could be sent (RFC 6455 §5.5.3).
    public var webSocketPingsReceived = 0
    public var webSocketPongsCoalesced = 0
    public var lastPingRTTMilliseconds: Double?
    public var lastLatencyMilliseconds: Double?

    public init() {}

    public var json: String {
        "{\"frames_sent\":\(framesSent),\"bytes_sent\":\(bytesSent),"
            + "\"frames_received\":\(framesReceived),\"bytes_received\":\(bytesReceived),"
            + "\"audio_frames_dropped\":\(audioFramesDropped),\"audio_bytes_dropped\":\(audioBytesDropped),"
            + "\"audio_frames_dropped_backpressure\":\(audioFramesDroppedBackpressure),\"send_queue_bytes\":\(sendQueueBytes),"
            + "\"reconnects\":\(reconnects),"
            + "\"messages_sent\":\(messagesSent),\"messages_received\":\(messagesReceived),"
            + "\"pongs_ignored\":\(pongsIgnored),"
            + "\"ws_pings_received\":\(webSocketPingsReceived),\"ws_pongs_coalesced\":\(webSocketPongsCoalesced),"
            + "\"last_ping_rtt_ms\":\(Self.milliseconds(lastPingRTTMilliseconds)),"
            + "\"last_latency_ms\":\(Self.milliseconds(lastLatencyMilliseconds))}"
    }

    /// Three decimals, or null for no value and for one no clock could have measured:
    /// non-finite, or beyond a year (a figure derived from a hostile server's bytes
    /// must never reach a conversion that traps).
    static func milliseconds(_ value: Double?) -> String {
        guard let value, value.isFinite, abs(value) <= maxReportedMilliseconds else { return "null" }
        return String(Double(Int((value * 1000).rounded())) / 1000)
    }

    static let maxReportedMilliseconds = 365.0 * 86_400_000
}
