/// Which module processes the microphone in device audio mode
/// (millis_config_set_echo_canceller): its echo canceller, and with it its noise
/// suppressor and gain control. The raw values are the C enum's.
public enum EchoCanceller: Int32, Sendable, CaseIterable {
    /// The WebRTC audio processing module (what PulseAudio's module-echo-cancel runs):
    /// the default, measured 25 to 30 dB better than speexdsp on a room
    /// (BENCHMARKS.md, "Echo cancellation").
    case webrtc = 0
    /// speexdsp's MDF filter and preprocessor: keeps more of the user's voice while the
    /// agent speaks, cancels far less echo.
    case speex = 1

    /// The name the configuration, the CLI and the stream description use.
    public var name: String {
        switch self {
        case .webrtc: "webrtc"
        case .speex: "speex"
        }
    }
}
