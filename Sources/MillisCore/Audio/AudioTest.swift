#if canImport(Glibc)
import Glibc
#endif

/// `millis audio-test` (millis_audio_test): the configured speaker and microphone
/// checked without a server. A probe (speech-shaped noise) plays twice through the
/// device audio engine a conversation would use: first with the microphone's processing
/// off, to hear the echo as it is (its delay, its level, the noise floor, clipping), then
/// with the processing as configured, to measure what the echo canceller removes.
public enum AudioTest {
    private static func number(_ value: Double) -> JSONValue { .number(String(value)) }
    private static func count(_ value: Int) -> JSONValue { .number(String(value)) }

    public static let defaultDurationMilliseconds = 3000
    static let durations = 1000...30_000
    /// Silence recorded before the probe (the noise floor) and after it (the echo's tail).
    static let leadMilliseconds = 600, tailMilliseconds = 700

    /// The report, as JSON (docs/audio.md, "Checking a device: millis audio-test").
    /// wireFrameMilliseconds: the conversation's (the devices open as they would for one).
    public static func run(_ settings: AudioSettings, durationMilliseconds: Int,
                           wireFrameMilliseconds: Int = ClientConfig().frameMilliseconds) throws(MillisError) -> String {
        guard settings.inputFile == nil && settings.outputFile == nil else {
            throw MillisError(.invalidState, "the audio test checks devices, and this configuration has an audio file in place of one: leave out millis_config_set_audio_input_file / _output_file")
        }
        guard durations.contains(durationMilliseconds) else {
            throw MillisError(.invalidArgument, "audio test duration \(durationMilliseconds) ms is out of range: give 1000 to 30000 ms (default 3000)")
        }
        let probe = Probe.samples(milliseconds: durationMilliseconds)
        var unprocessed = settings
        unprocessed.echoCancellation = false
        unprocessed.noiseSuppression = false
        unprocessed.autoGainControl = false
        let heard = try Run(unprocessed, probe: probe, wireFrameMilliseconds: wireFrameMilliseconds)
        let processed = settings.echoCancellation
            ? try Run(settings, probe: probe, wireFrameMilliseconds: wireFrameMilliseconds) : nil
        return report(settings, probe: probe, heard: heard, processed: processed)
    }

    /// One pass of the probe through the engine: what the microphone delivered, and
    /// where in it the probe's first sample was written to the speaker.
    struct Run {
        var microphone: [Int16] = []
        /// Microphone samples recorded before the first probe sample was written to the
        /// speaker device (nil: the speaker never started).
        var probeWrittenAt: Double?
        var streams = ""
        let counters = AudioCounters()

        init(_ settings: AudioSettings, probe: [Int16], wireFrameMilliseconds: Int) throws(MillisError) {
            let engine = try AudioEngine(settings: settings, counters: counters, agentAnalyser: Analyser(),
                                         userAnalyser: Analyser(), wireFrameMilliseconds: wireFrameMilliseconds)
            streams = engine.streamDescriptionJSON
            engine.start()
            engine.enableCapture()
            defer { engine.stop() }
            let start = MonotonicClock.now()
            let lead = UInt64(AudioTest.leadMilliseconds) * 1_000_000
            let total = lead + UInt64(probe.count) * Playout.nanosecondsPerSample
                + UInt64(AudioTest.tailMilliseconds) * 1_000_000
            var enqueued = false
            // (microphone samples so far, when the newest of them was captured): the
            // capture clock, to place the probe's start on the microphone's timeline.
            var timeline: [(samples: Int, at: UInt64)] = []
            var buffer = [Int16](repeating: 0, count: 1600)
            // What the test lasts, with room for a capture clock running fast: a device
            // without a clock (ALSA's file plugin) delivers as fast as it is read.
            let keep = Int(total / Playout.nanosecondsPerSample) * 3 / 2
            var poll = [pollfd(fd: engine.loopWakeFD, events: Int16(POLLIN), revents: 0)]
            while MonotonicClock.now() &- start < total {
                _ = Glibc.poll(&poll, 1, 20)
                AudioEngine.consume(engine.loopWakeFD)
                if let message = engine.failure.withLock({ $0 }) {
                    throw MillisError(.audioDevice, message)
                }
                while true {
                    let n = buffer.withUnsafeMutableBufferPointer { engine.captured.read(into: $0) }
                    if n == 0 { break }
                    microphone += buffer[0..<min(n, max(0, keep - microphone.count))]
                }
                let capturedAt = engine.lastCapturedAt.load(ordering: .acquiring)
                if capturedAt != 0 { timeline.append((microphone.count, capturedAt)) }
                if !enqueued && MonotonicClock.now() &- start >= lead {
                    probe.withUnsafeBytes { engine.enqueue(Array($0), receivedAt: MonotonicClock.now()) }
                    enqueued = true
                }
            }
            let writtenAt = engine.answerPlayedAt.load(ordering: .acquiring)
            if writtenAt != 0 { probeWrittenAt = Self.sampleIndex(at: writtenAt, on: timeline) }
        }

        /// The microphone sample captured at `time`, from the (count, time) pairs:
        /// by the nearest pair, at 16 samples a millisecond.
        static func sampleIndex(at time: UInt64, on timeline: [(samples: Int, at: UInt64)]) -> Double? {
            guard let nearest = timeline.min(by: { absDiff($0.at, time) < absDiff($1.at, time) }) else { return nil }
            let seconds = (Double(time) - Double(nearest.at)) / 1e9
            return Double(nearest.samples) + seconds * 16_000
        }

        private static func absDiff(_ a: UInt64, _ b: UInt64) -> UInt64 { a > b ? a - b : b - a }
    }

    /// Where the probe sits in the microphone's recording: the lag of the strongest
    /// normalised cross-correlation, and that correlation (1: the probe exactly).
    static func locate(_ probe: [Int16], in microphone: [Int16]) -> (lag: Int, correlation: Double)? {
        guard microphone.count > probe.count else { return nil }
        var size = 2
        while size < microphone.count + probe.count { size <<= 1 }
        let fft = FFT(size: size)
        var mr = [Double](repeating: 0, count: size), mi = [Double](repeating: 0, count: size)
        var pr = [Double](repeating: 0, count: size), pi = [Double](repeating: 0, count: size)
        for (i, x) in microphone.enumerated() { mr[i] = Double(x) }
        for (i, x) in probe.enumerated() { pr[i] = Double(x) }
        func transform(_ re: inout [Double], _ im: inout [Double]) {
            re.withUnsafeMutableBufferPointer { r in im.withUnsafeMutableBufferPointer { fft.transform(real: r, imag: $0) } }
        }
        transform(&mr, &mi)
        transform(&pr, &pi)
        // The microphone times the probe's conjugate, conjugated for the inverse
        // (the inverse transform is the forward one of the conjugate, conjugated and
        // scaled; only the real part is used, so the last conjugation is left out).
        for k in 0..<size {
            let re = mr[k] * pr[k] + mi[k] * pi[k]
            let im = mi[k] * pr[k] - mr[k] * pi[k]
            mr[k] = re
            mi[k] = -im
        }
        transform(&mr, &mi)
        let probeEnergy = probe.reduce(0.0) { $0 + Double($1) * Double($1) }
        var prefix = [Double](repeating: 0, count: microphone.count + 1)
        for (i, x) in microphone.enumerated() { prefix[i + 1] = prefix[i] + Double(x) * Double(x) }
        var best: (lag: Int, correlation: Double)?
        for lag in 0...(microphone.count - probe.count) {
            let energy = prefix[lag + probe.count] - prefix[lag]
            guard energy > 0, probeEnergy > 0 else { continue }
            let c = abs(mr[lag]) / Double(size) / (energy * probeEnergy).squareRoot()
            if c > (best?.correlation ?? 0) { best = (lag, c) }
        }
        return best
    }

    static func rmsDecibels(_ x: ArraySlice<Int16>) -> Double? {
        guard !x.isEmpty else { return nil }
        let power = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)
        return power > 0 ? 10 * log10(power / (32768.0 * 32768.0)) : -120
    }

    static func report(_ settings: AudioSettings, probe: [Int16], heard: Run, processed: Run?) -> String {
        let mic = heard.microphone
        let found = locate(probe, in: mic)
        let echoHeard = (found?.correlation ?? 0) >= 0.2
        var fields: [(String, JSONValue)] = []
        // The devices as opened: the stream description without the processing (the
        // first run had it off) and without its "source".
        if let streams = try? JSONParser.parse(heard.streams), case .object(let description) = streams {
            let left = ["source", "echo_cancellation", "noise_suppression", "auto_gain_control", "echo_canceller",
                        "playback"]
            fields.append(("capture", .object(description.filter { !left.contains($0.key) })))
            fields.append(("playback", streams["playback"] ?? .null))
        }
        fields.append(("echo_canceller", settings.echoCancellation ? .string(settings.echoCanceller.name) : .null))
        fields.append(("echo_heard", .bool(echoHeard)))
        var advice: [String] = []
        if echoHeard, let found, let writtenAt = heard.probeWrittenAt {
            fields.append(("echo_delay_ms", number(((Double(found.lag) - writtenAt) / 16).rounded())))
        } else {
            fields.append(("echo_delay_ms", .null))
        }
        if echoHeard, let found {
            let aligned = mic[found.lag..<min(mic.count, found.lag + probe.count)]
            let level = (rmsDecibels(aligned) ?? -120) - (rmsDecibels(probe[...]) ?? -120)
            fields.append(("echo_level_db", number((level * 10).rounded() / 10)))
        } else {
            fields.append(("echo_level_db", .null))
            advice.append("the microphone did not hear the speaker: expected with a headset; otherwise check that both are the devices you meant (millis devices), unmuted and turned up")
        }
        let leadSamples = min(mic.count, AudioTest.leadMilliseconds * 16 - 1600)
        let floor = rmsDecibels(mic[min(1600, leadSamples)..<leadSamples])
        fields.append(("noise_floor_dbfs", floor.map { number(($0 * 10).rounded() / 10) } ?? .null))
        let peak = mic.reduce(0) { max($0, abs(Int($1))) }
        fields.append(("microphone_peak_dbfs", number(peak == 0 ? -120 : (200 * log10(Double(peak) / 32768)).rounded() / 10)))
        let clipped = mic.reduce(0) { $0 + ($1 == Int16.max || $1 == Int16.min ? 1 : 0) }
        fields.append(("clipped_samples", count(clipped)))
        if clipped > 0 {
            advice.append("the microphone clips (\(clipped) samples at full scale): lower its capture gain (alsamixer) or the speaker's volume; a clipped echo cannot be cancelled")
        }
        if let processed {
            let erle = processed.counters.erleCentibels.load(ordering: .relaxed)
            let recent = processed.counters.recentERLECentibels.load(ordering: .relaxed)
            // Nothing to remove where no echo was heard: no figure rather than a large one.
            fields.append(("erle_db", erle == Int.min || !echoHeard ? .null : number(Double(erle) / 10)))
            fields.append(("erle_recent_db", recent == Int.min || !echoHeard ? .null : number(Double(recent) / 10)))
            if echoHeard && recent != Int.min && recent < 150 {
                advice.append("the echo canceller removed less than 15 dB of the echo: the agent may hear itself; lower the speaker's volume, move the microphone away from it, or try the other canceller")
            }
        } else {
            fields.append(("erle_db", .null))
            fields.append(("erle_recent_db", .null))
        }
        let runs = [heard] + (processed.map { [$0] } ?? [])
        func sum(_ counter: (AudioCounters) -> Int) -> JSONValue { count(runs.reduce(0) { $0 + counter($1.counters) }) }
        fields.append(("playback_underruns", sum { $0.playbackUnderruns.load(ordering: .relaxed) }))
        fields.append(("playback_xruns", sum { $0.playbackXruns.load(ordering: .relaxed) }))
        fields.append(("capture_overruns", sum { $0.captureOverruns.load(ordering: .relaxed) }))
        fields.append(("advice", .array(advice.map { .string($0) })))
        var out = ""
        JSONWriter.write(.object(fields), to: &out)
        return out
    }
}

/// The probe: noise shaped like speech (its spectrum falling above a few hundred Hz),
/// in syllables of 200 ms with 60 ms gaps, at -20 dBFS. Noise, because its
/// cross-correlation has one sharp peak (the echo's delay); speech-like, because that is
/// what echo cancellers are tuned for. The same samples every time.
enum Probe {
    static func samples(milliseconds: Int) -> [Int16] {
        let count = milliseconds * 16
        var state: UInt32 = 0x2545_F491
        var low = 0.0, previous = 0.0
        var shaped = [Double](repeating: 0, count: count)
        for i in 0..<count {
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            let white = Double(state) / Double(UInt32.max) * 2 - 1
            low = 0.85 * low + white  // falling above ~400 Hz
            let band = low - previous  // and no rumble
            previous = low
            let t = i % (16 * 260)
            let envelope = t < 16 * 200 ? sin(Double.pi * Double(t) / Double(16 * 200)) : 0
            shaped[i] = band * envelope
        }
        let rms = (shaped.reduce(0) { $0 + $1 * $1 } / Double(count)).squareRoot()
        let gain = rms > 0 ? 32768 * pow(10, -20.0 / 20) / rms : 0
        return shaped.map { Int16(clamping: Int(($0 * gain).rounded())) }
    }
}
