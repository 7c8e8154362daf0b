/// Device audio mode's settings (millis_config_set_audio_devices and friends).
public struct AudioSettings: Sendable, Equatable {
    public var captureDevice = "default"
    public var playbackDevice = "default"
    public var echoCancellation = true
    public var noiseSuppression = true
    public var autoGainControl = true
    public var echoCanceller = EchoCanceller.webrtc
    /// ALSA period: how often the audio threads wake, and the granularity of `clear`.
    public var periodMilliseconds = 10
    /// Agent audio queued before playback starts (and restarts after a gap), absorbing
    /// network jitter. See docs/audio.md, "The playout prebuffer", for the measurement behind the default.
    public var prebufferMilliseconds = 60
    /// How long the speaker's queue may run dry before an answer counts as over
    /// (`drained`): the same grace as application audio mode's simulated playout.
    public var playoutGraceNanoseconds = Playout.defaultGraceNanoseconds
    /// A file as the microphone (millis_config_set_audio_input_file), read in real time
    /// or, with `inputFast`, as fast as the connection takes it.
    public var inputFile: String?
    public var inputFast = false
    /// A file as the speaker (millis_config_set_audio_output_file).
    public var outputFile: String?

    public init() {}
}
