#if canImport(Glibc)
import Glibc
#endif
import CAudio

/// One ALSA PCM, opened non-blocking and configured at what the device really offers:
/// its own rate, channel count and sample format (ALSA's resampling is switched off,
/// so a "plughw"-style conversion is never silently relied upon). The audio engine
/// converts to and from 16 kHz mono itself. Used by one thread at a time.
final class AlsaPCM {
    enum Direction {
        case capture, playback
        var alsa: snd_pcm_stream_t { self == .capture ? SND_PCM_STREAM_CAPTURE : SND_PCM_STREAM_PLAYBACK }
        var word: String { self == .capture ? "capture" : "playback" }
    }

    let name: String
    let direction: Direction
    private(set) var handle: OpaquePointer?
    private(set) var rate = 0
    private(set) var channels = 0
    private(set) var format: SampleFormat = .s16
    private(set) var periodFrames = 0
    private(set) var bufferFrames = 0
    /// What ALSA reported while opening and configuring (lines it would have printed).
    private(set) var notes: [String] = []

    /// Opens and configures; the error says which device, what failed and what to try.
    init(name: String, direction: Direction, periodMilliseconds: Int, periods: Int) throws(MillisError) {
        self.name = name
        self.direction = direction
        try Alsa.load()
        // ALSA's own account of a failure (its lines never reach stderr) becomes the
        // cause in our message; of a success, debug lines for the conversation's log.
        caudio_alsa_notes_clear()
        var pcm: OpaquePointer?
        let rc = caudio_snd_pcm_open(&pcm, name, direction.alsa, Int32(CAUDIO_NONBLOCK))
        guard rc >= 0, let pcm else {
            throw MillisError(.audioDevice, "could not open ALSA \(direction.word) device '\(name)': \(Self.describeOpenFailure(rc))\(Alsa.causeSuffix(Alsa.takeNotes())); list the devices with millis_audio_devices_json() and choose them with millis_config_set_audio_devices()")
        }
        handle = pcm
        do {
            try configure(periodMilliseconds: periodMilliseconds, periods: periods)
        } catch {
            caudio_snd_pcm_close(pcm)
            handle = nil
            throw error
        }
        notes = Alsa.takeNotes()
    }

    deinit { close() }

    func close() {
        if let handle { caudio_snd_pcm_close(handle) }
        handle = nil
    }

    /// The stream as applications see it in `useraudioready`.
    var description: [(key: String, value: JSONValue)] {
        [("device", .string(name)), ("rate", .number("\(rate)")), ("channels", .number("\(channels)")),
         ("format", .string(format.alsaName)), ("period_frames", .number("\(periodFrames)")),
         ("buffer_frames", .number("\(bufferFrames)"))]
    }

    private func configure(periodMilliseconds: Int, periods: Int) throws(MillisError) {
        guard let pcm = handle else { return }
        var hwp: OpaquePointer?
        guard caudio_snd_pcm_hw_params_malloc(&hwp) >= 0, let hw = hwp else {
            throw MillisError(.noMemory, "out of memory configuring ALSA device '\(name)'")
        }
        defer { caudio_snd_pcm_hw_params_free(hw) }
        func fail(_ what: String, _ rc: Int32) -> MillisError {
            MillisError(.audioDevice, "ALSA \(direction.word) device '\(name)' refused \(what): \(Self.describe(rc))\(Alsa.causeSuffix(Alsa.takeNotes()))")
        }
        var rc = caudio_snd_pcm_hw_params_any(pcm, hw)
        guard rc >= 0 else { throw fail("its configuration space", rc) }
        // Conversions are ours: never let a plug layer resample behind our back.
        _ = caudio_snd_pcm_hw_params_set_rate_resample(pcm, hw, 0)
        rc = caudio_snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED)
        guard rc >= 0 else { throw fail("interleaved read/write access", rc) }
        guard let chosen = SampleFormat.preference.first(where: { caudio_snd_pcm_hw_params_test_format(pcm, hw, $0.alsa) == 0 }) else {
            throw MillisError(.audioDevice, "ALSA \(direction.word) device '\(name)' offers none of the sample formats libmillis reads (\(SampleFormat.preference.map(\.alsaName).joined(separator: ", ")))")
        }
        rc = caudio_snd_pcm_hw_params_set_format(pcm, hw, chosen.alsa)
        guard rc >= 0 else { throw fail("format \(chosen.alsaName)", rc) }
        var ch: UInt32 = 1
        rc = caudio_snd_pcm_hw_params_set_channels_near(pcm, hw, &ch)
        guard rc >= 0 else { throw fail("every channel count", rc) }
        // 16 kHz when the device has it (no conversion at all), else its nearest rate.
        var r: UInt32 = 16_000
        var dir: Int32 = 0
        rc = caudio_snd_pcm_hw_params_set_rate_near(pcm, hw, &r, &dir)
        guard rc >= 0 else { throw fail("every sample rate", rc) }
        var periodUs = UInt32(periodMilliseconds * 1000)
        dir = 0
        rc = caudio_snd_pcm_hw_params_set_period_time_near(pcm, hw, &periodUs, &dir)
        guard rc >= 0 else { throw fail("a period of \(periodMilliseconds) ms", rc) }
        var bufferUs = periodUs * UInt32(periods)
        dir = 0
        rc = caudio_snd_pcm_hw_params_set_buffer_time_near(pcm, hw, &bufferUs, &dir)
        guard rc >= 0 else { throw fail("a buffer of \(periods) periods", rc) }
        rc = caudio_snd_pcm_hw_params(pcm, hw)
        guard rc >= 0 else { throw fail("the configuration \(chosen.alsaName) \(ch) ch \(r) Hz", rc) }
        var period = snd_pcm_uframes_t(0)
        var buffer = snd_pcm_uframes_t(0)
        dir = 0
        caudio_snd_pcm_hw_params_get_period_size(hw, &period, &dir)
        caudio_snd_pcm_hw_params_get_buffer_size(hw, &buffer)
        format = chosen
        channels = Int(ch)
        rate = Int(r)
        periodFrames = Int(period)
        bufferFrames = Int(buffer)
        guard rate >= 8000, channels >= 1, periodFrames > 0, bufferFrames >= periodFrames else {
            throw MillisError(.audioDevice, "ALSA \(direction.word) device '\(name)' settled on an unusable configuration (\(rate) Hz, \(channels) ch, period \(periodFrames), buffer \(bufferFrames))")
        }
        try configureSoftware()
    }

    private func configureSoftware() throws(MillisError) {
        guard let pcm = handle else { return }
        var swp: OpaquePointer?
        guard caudio_snd_pcm_sw_params_malloc(&swp) >= 0, let sw = swp else {
            throw MillisError(.noMemory, "out of memory configuring ALSA device '\(name)'")
        }
        defer { caudio_snd_pcm_sw_params_free(sw) }
        caudio_snd_pcm_sw_params_current(pcm, sw)
        caudio_snd_pcm_sw_params_set_avail_min(pcm, sw, snd_pcm_uframes_t(periodFrames))
        if direction == .playback {
            // Start once the buffer is full: starting on one period leaves a single
            // period of slack for the first wake-up, and a sound server (PulseAudio)
            // underruns at once. The prebuffer upstream decides when audio is ready.
            caudio_snd_pcm_sw_params_set_start_threshold(pcm, sw, snd_pcm_uframes_t(bufferFrames))
        }
        let rc = caudio_snd_pcm_sw_params(pcm, sw)
        guard rc >= 0 else {
            throw MillisError(.audioDevice, "ALSA \(direction.word) device '\(name)' refused its software parameters: \(Self.describe(rc))\(Alsa.causeSuffix(Alsa.takeNotes()))")
        }
    }

    /// Frames read (≥ 0) or a negative errno (-EAGAIN when nothing is ready).
    func read(into buffer: UnsafeMutableRawPointer, frames: Int) -> Int {
        guard let handle else { return -Int(EBADF) }
        return Int(caudio_snd_pcm_readi(handle, buffer, snd_pcm_uframes_t(frames)))
    }

    /// Frames written (≥ 0) or a negative errno.
    func write(_ buffer: UnsafeRawPointer, frames: Int) -> Int {
        guard let handle else { return -Int(EBADF) }
        return Int(caudio_snd_pcm_writei(handle, buffer, snd_pcm_uframes_t(frames)))
    }

    /// Brings the stream back after an xrun or a suspend; false when it cannot.
    func recover(_ error: Int) -> Bool {
        guard let handle else { return false }
        // A failure's notes are then this recovery's, for the message (Alsa.takeNotes).
        caudio_alsa_notes_clear()
        return caudio_snd_pcm_recover(handle, Int32(error), 1) >= 0
    }

    /// Frames between the application and the converter: queued for playback, or
    /// captured and not yet read. nil when the device cannot tell.
    func delay() -> Int? {
        guard let handle else { return nil }
        var frames = snd_pcm_sframes_t(0)
        return caudio_snd_pcm_delay(handle, &frames) >= 0 ? Int(frames) : nil
    }

    func available() -> Int {
        guard let handle else { return 0 }
        return Int(caudio_snd_pcm_avail_update(handle))
    }

    /// Stops at once, discarding what is in the device buffer, and prepares again.
    /// `silenced` runs between the two: the moment the device has let go of its
    /// buffer (preparing again can take a sound server a round trip or two).
    func dropAndPrepare(silenced: () -> Void) {
        guard let handle else { return }
        caudio_snd_pcm_drop(handle)
        silenced()
        caudio_snd_pcm_prepare(handle)
    }

    func start() {
        guard let handle else { return }
        caudio_snd_pcm_start(handle)
    }

    func pollDescriptors() -> [pollfd] {
        guard let handle else { return [] }
        let n = Int(caudio_snd_pcm_poll_descriptors_count(handle))
        guard n > 0 else { return [] }
        var fds = [pollfd](repeating: pollfd(), count: n)
        let got = fds.withUnsafeMutableBufferPointer { caudio_snd_pcm_poll_descriptors(handle, $0.baseAddress, UInt32(n)) }
        return Array(fds.prefix(max(0, Int(got))))
    }

    /// Plugins re-arm their descriptors here (pulse's stays readable until asked, even
    /// with less than a period to read: a thread that only polls it spins on a core).
    func acknowledgePoll(_ fds: UnsafeMutableBufferPointer<pollfd>) {
        guard let handle, let base = fds.baseAddress, fds.contains(where: { $0.revents != 0 }) else { return }
        var revents: UInt16 = 0
        _ = caudio_snd_pcm_poll_descriptors_revents(handle, base, UInt32(fds.count), &revents)
    }

    /// ALSA answers an unknown PCM or card with ENOENT, "No such file or directory".
    static func describeOpenFailure(_ rc: Int32) -> String {
        rc == -ENOENT ? "no such device" : describe(rc)
    }

    static func describe(_ rc: some BinaryInteger) -> String {
        Alsa.describe(rc)
    }
}
