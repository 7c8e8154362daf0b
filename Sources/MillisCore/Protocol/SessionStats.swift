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
    public var lastPingRTTMilliseconds: Double?
    public var lastLatencyMilliseconds: Double?

    public init() {}

    public var json: String {
        func number(_ value: Double?) -> String {
            guard let value else { return "null" }
            return String(Double(Int((value * 1000).rounded())) / 1000)
        }
        return "{\"frames_sent\":\(framesSent),\"bytes_sent\":\(bytesSent),"
            + "\"frames_received\":\(framesReceived),\"bytes_received\":\(bytesReceived),"
            + "\"audio_frames_dropped\":\(audioFramesDropped),\"audio_bytes_dropped\":\(audioBytesDropped),"
            + "\"audio_frames_dropped_backpressure\":\(audioFramesDroppedBackpressure),\"send_queue_bytes\":\(sendQueueBytes),"
            + "\"reconnects\":\(reconnects),"
            + "\"messages_sent\":\(messagesSent),\"messages_received\":\(messagesReceived),"
            + "\"last_ping_rtt_ms\":\(number(lastPingRTTMilliseconds)),"
            + "\"last_latency_ms\":\(number(lastLatencyMilliseconds))}"
    }
}
