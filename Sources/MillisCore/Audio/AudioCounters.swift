import Synchronization

/// The audio engine's counters, kept by the client over its whole life (each
/// conversation's engine adds to them). Written by the audio threads, read anywhere.
final class AudioCounters: Sendable {
    let capturePeriods = Atomic<Int>(0)
    /// ALSA capture overruns (the device filled up before we read), recovered.
    let captureOverruns = Atomic<Int>(0)
    /// 10 ms frames the network loop did not take in time (capture ring full).
    let captureFramesDropped = Atomic<Int>(0)
    let playbackPeriods = Atomic<Int>(0)
    /// The playout queue ran dry in the middle of agent speech (audio resumed before
    /// the turn ended): a gap the listener heard as silence.
    let playbackUnderruns = Atomic<Int>(0)
    /// ALSA playback underruns (the device ran out because the thread was late), recovered.
    let playbackXruns = Atomic<Int>(0)
    /// Agent audio dropped because the playout queue was full.
    let playoutSamplesDropped = Atomic<Int>(0)
    let clears = Atomic<Int>(0)
    /// Nanoseconds from the last `clear` request to the device being silent.
    let lastClearNanoseconds = Atomic<Int>(-1)
    /// Echo return loss enhancement of the current or last conversation, over all of
    /// it, in centibels (Int.min: none).
    let erleCentibels = Atomic<Int>(Int.min)
    /// The same over the last 2 s of speaker activity (the canceller's current state).
    let recentERLECentibels = Atomic<Int>(Int.min)
    /// Microphone to socket: from a frame's last sample being captured to the frame
    /// being handed to the WebSocket, summed in microseconds over `captureToWireFrames`.
    let captureToWireMicroseconds = Atomic<Int>(0)
    let captureToWireFrames = Atomic<Int>(0)
    /// Socket to speaker: from an agent frame being read off the socket to its first
    /// sample being written to the device, in microseconds over `wireToDeviceFrames`;
    /// the largest; and the same less the playout queue the frame waited behind (what
    /// the library itself adds: the wait for the next period and the write).
    let wireToDeviceMicroseconds = Atomic<Int>(0)
    let wireToDeviceMaxMicroseconds = Atomic<Int>(0)
    let wireToDeviceBeyondQueueMicroseconds = Atomic<Int>(0)
    let wireToDeviceBeyondQueueMaxMicroseconds = Atomic<Int>(0)
    let wireToDeviceFrames = Atomic<Int>(0)
    /// Times the echo canceller's reference was moved to where the echo really was.
    let echoRealignments = Atomic<Int>(0)
    /// Playout queue now, in 16 kHz samples.
    let playoutQueuedSamples = Atomic<Int>(0)

    init() {}

    var json: String {
        func ms(_ ns: Int) -> String { ns < 0 ? "null" : String(Double(ns / 1000) / 1000) }
        func decibels(_ cb: Int) -> String { cb == Int.min ? "null" : String(Double(cb) / 10) }
        let frames = captureToWireFrames.load(ordering: .relaxed)
        let captureToWire = frames == 0 ? "null"
            : String(Double(captureToWireMicroseconds.load(ordering: .relaxed) / frames) / 1000)
        let deviceFrames = wireToDeviceFrames.load(ordering: .relaxed)
        func perFrame(_ total: borrowing Atomic<Int>) -> String {
            deviceFrames == 0 ? "null" : String(Double(total.load(ordering: .relaxed) / deviceFrames) / 1000)
        }
        func largest(_ value: borrowing Atomic<Int>) -> String {
            deviceFrames == 0 ? "null" : String(Double(value.load(ordering: .relaxed)) / 1000)
        }
        return "\"capture_periods\":\(capturePeriods.load(ordering: .relaxed)),"
            + "\"capture_overruns\":\(captureOverruns.load(ordering: .relaxed)),"
            + "\"capture_frames_dropped\":\(captureFramesDropped.load(ordering: .relaxed)),"
            + "\"playback_periods\":\(playbackPeriods.load(ordering: .relaxed)),"
            + "\"playback_underruns\":\(playbackUnderruns.load(ordering: .relaxed)),"
            + "\"playback_xruns\":\(playbackXruns.load(ordering: .relaxed)),"
            + "\"playout_samples_dropped\":\(playoutSamplesDropped.load(ordering: .relaxed)),"
            + "\"playout_queue_ms\":\(playoutQueuedSamples.load(ordering: .relaxed) / 16),"
            + "\"clears\":\(clears.load(ordering: .relaxed)),"
            + "\"last_clear_ms\":\(ms(lastClearNanoseconds.load(ordering: .relaxed))),"
            + "\"capture_to_wire_ms\":\(captureToWire),"
            + "\"wire_to_device_ms\":\(perFrame(wireToDeviceMicroseconds)),"
            + "\"wire_to_device_max_ms\":\(largest(wireToDeviceMaxMicroseconds)),"
            + "\"wire_to_device_beyond_queue_ms\":\(perFrame(wireToDeviceBeyondQueueMicroseconds)),"
            + "\"wire_to_device_beyond_queue_max_ms\":\(largest(wireToDeviceBeyondQueueMaxMicroseconds)),"
            + "\"wire_to_device_frames\":\(deviceFrames),"
            + "\"echo_realignments\":\(echoRealignments.load(ordering: .relaxed)),"
            + "\"echo_erle_db\":\(decibels(erleCentibels.load(ordering: .relaxed))),"
            + "\"echo_erle_recent_db\":\(decibels(recentERLECentibels.load(ordering: .relaxed)))"
    }
}
