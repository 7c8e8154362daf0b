/// The speaker's playout decisions, as a pure state machine: what the playback thread
/// writes each period (agent audio from the playout queue, or silence), when it waits,
/// and when an answer has started, run dry (an underrun) or finished sounding (drained).
///
/// Inputs are the queue's fill, the time (monotonic nanoseconds, passed in) and the
/// device's room and delay; the playback thread (AudioEngine) does the I/O. It holds
/// no references, allocates nothing and takes no locks, so the real-time thread runs it.
///
/// Per period the thread asks `waitsForRoom`, then `nextPeriod`, performs the step
/// (reading the queue for `.agent`), and reports it with `periodMade`.
///
///     idle ──queue has audio──▶ buffering ──prebuffer full, or waited it out──▶ playing
///       ▲                          ▲                                              │
///       │                          └──────────audio again (an underrun)───────┐   │ queue ran dry
///       └──grace over and the device has played the last agent sample──── starved ◀┘
///
/// `clear` (barge-in) returns to idle from anywhere. While paused nothing moves, and
/// silence plays.
struct Playout {
    /// The playout grace both playouts use: the device's (this one) and the simulated
    /// one of application audio mode (`Session.Settings`), so an agent turns idle after
    /// the same gap in either mode. It is the jitter a playout buffer absorbs: frames
    /// paced exactly in real time arrive just as the previous one finishes.
    static let defaultGraceNanoseconds: UInt64 = 80_000_000

    /// Nanoseconds per sample at 16 kHz, the queue's rate.
    static let nanosecondsPerSample: UInt64 = 62_500

    struct Configuration: Equatable, Sendable {
        /// One period of the queue's audio (16 kHz samples): what each step writes.
        var periodSamples: Int
        /// One period in device frames: the room the device needs for the next one.
        var periodDeviceFrames: Int
        /// The device's whole buffer, in 16 kHz samples: how far silence may run ahead of
        /// real time.
        var deviceBufferSamples: Int
        /// Agent audio queued before an answer starts (or restarts after a gap)...
        var prebufferSamples: Int
        /// ...or this long waited for it.
        var prebufferNanoseconds: UInt64
        /// How long the queue may run dry before the answer counts as over.
        var graceNanoseconds: UInt64

        init(periodSamples: Int, periodDeviceFrames: Int, deviceBufferSamples: Int,
             prebufferSamples: Int, prebufferNanoseconds: UInt64, graceNanoseconds: UInt64) {
            self.periodSamples = periodSamples
            self.periodDeviceFrames = periodDeviceFrames
            self.deviceBufferSamples = deviceBufferSamples
            self.prebufferSamples = prebufferSamples
            self.prebufferNanoseconds = prebufferNanoseconds
            self.graceNanoseconds = graceNanoseconds
        }

        /// From the audio settings and the device as opened (its rate, buffer size).
        init(settings: AudioSettings, deviceRate: Int, deviceBufferFrames: Int) {
            let periodSamples = 16 * settings.periodMilliseconds
            self.init(periodSamples: periodSamples,
                      periodDeviceFrames: periodSamples * deviceRate / 16_000,
                      deviceBufferSamples: deviceBufferFrames * 16_000 / deviceRate,
                      prebufferSamples: 16 * settings.prebufferMilliseconds,
                      prebufferNanoseconds: UInt64(settings.prebufferMilliseconds) * 1_000_000,
                      graceNanoseconds: settings.playoutGraceNanoseconds)
        }
    }

    /// Where the playout stands, for tests and diagnostics.
    enum Phase: Equatable, Sendable {
        case idle, buffering, playing, starved
    }

    /// What the next period is.
    enum Period: Equatable, Sendable {
        /// Read up to `upTo` samples from the queue; the rest of the period is silence.
        case agent(upTo: Int)
        /// A period of silence.
        case silence
        /// Silence is a device buffer ahead of real time: wait a period, then ask again.
        case waitForPace
    }

    /// One decision of `nextPeriod`.
    struct Step: Equatable, Sendable {
        var period: Period
        /// The queue refilled after running dry: an underrun (counted in `underruns`).
        var underrun = false
        /// The answer has finished sounding: tell the network loop (`drained`).
        var drained = false
        /// Audio came while idle: take back a drain announced but not yet taken by the
        /// network loop, and if there was one, report `drainWithdrawn`.
        var withdrawDrained = false

        init(period: Period, underrun: Bool = false, drained: Bool = false, withdrawDrained: Bool = false) {
            self.period = period
            self.underrun = underrun
            self.drained = drained
            self.withdrawDrained = withdrawDrained
        }
    }

    private enum State {
        case idle
        case buffering(since: UInt64)
        case playing
        case starved(since: UInt64)
    }

    let configuration: Configuration
    private var state = State.idle
    /// 16 kHz samples written to the device so far, and where the last agent sample
    /// in them ends.
    private var written = 0
    private var lastAgentEnd = 0
    /// The previous period was all agent audio: the next one continues the answer.
    private var answerSounding = false
    /// The step being written reads the queue.
    private var reading = false
    /// Silence is written at real-time pace, never faster: a device without a clock
    /// (ALSA's file plugin) would otherwise take silence without end.
    private var silenceSince: UInt64?
    private var silenceWritten = 0
    /// Waits for room since the last period made (0 or 1).
    private var roomWaits = 0
    /// Underruns so far: the queue ran dry inside an answer and audio came again.
    private(set) var underruns = 0
    /// Answers that finished sounding (drains announced).
    private(set) var drains = 0

    init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    var phase: Phase {
        switch state {
        case .idle: .idle
        case .buffering: .buffering
        case .playing: .playing
        case .starved: .starved
        }
    }

    /// Whether to wait for the device before making the next period. Made earlier than
    /// the device has room for it, a period would sit ready (silence, say) while an agent
    /// frame that arrives meanwhile waits behind it, a period of latency. One wait per
    /// period at most: a device whose room shows only as it is written to (some plugins
    /// count that way) gets its period made anyway.
    /// `deviceRoom`: frames the device can take now (negative on an error); asked only
    /// when needed.
    mutating func waitsForRoom(deviceRoom: () -> Int) -> Bool {
        if roomWaits == 0 {
            let room = deviceRoom()
            if room >= 0 && room < configuration.periodDeviceFrames {
                roomWaits = 1
                return true
            }
        }
        roomWaits = 0
        return false
    }

    /// The next period: agent audio when playing, otherwise silence. The device never
    /// stops between answers, so its clock, and the echo canceller's alignment with it,
    /// stay put.
    /// - Parameters:
    ///   - now: monotonic nanoseconds.
    ///   - queued: samples in the playout queue.
    ///   - paused: the agent paused; the queue is held as it is, silence plays, and the
    ///     answer resumes at the sample where it stopped.
    ///   - deviceDelay: 16 kHz samples written but not yet played; asked only when an
    ///     answer may have finished.
    mutating func nextPeriod(now: UInt64, queued: Int, paused: Bool, deviceDelay: () -> Int) -> Step {
        var step = Step(period: .silence)
        if !paused {
            switch state {
            case .idle:
                if queued > 0 {
                    // A drain announced, but maybe not taken by the network loop yet (it
                    // was held up past the grace): then to the listener the answer never
                    // ended, it had a gap.
                    step.withdrawDrained = true
                    state = .buffering(since: now)
                }
            case .starved(let since):
                if queued > 0 {
                    underruns += 1
                    step.underrun = true
                    state = .buffering(since: now)
                } else if now &- since >= configuration.graceNanoseconds && written - deviceDelay() >= lastAgentEnd {
                    state = .idle
                    drains += 1
                    step.drained = true
                }
            case .buffering, .playing:
                break
            }
            if case .buffering(let since) = state,
               queued >= configuration.prebufferSamples || now &- since >= configuration.prebufferNanoseconds {
                state = .playing
            }
        }
        if case .playing = state, !paused {
            silenceSince = nil
            silenceWritten = 0
            reading = true
            step.period = .agent(upTo: configuration.periodSamples)
        } else {
            let since = silenceSince ?? now
            silenceSince = since
            if silenceWritten >= Int((now &- since) / Self.nanosecondsPerSample) + configuration.deviceBufferSamples {
                step.period = .waitForPace
            } else {
                silenceWritten += configuration.periodSamples
            }
        }
        return step
    }

    /// A drain the network loop had not taken yet was withdrawn (`Step.withdrawDrained`):
    /// the answer had a gap, an underrun.
    mutating func drainWithdrawn() {
        underruns += 1
    }

    /// The period decided by `nextPeriod` is made: `agentSamples` of it came from the
    /// queue (0 for silence), the rest is silence. True when it starts an answer sounding
    /// (the first agent audio after silence).
    mutating func periodMade(agentSamples: Int, now: UInt64) -> Bool {
        if reading {
            reading = false
            if agentSamples < configuration.periodSamples {
                state = .starved(since: now)
            }
        }
        var started = false
        if agentSamples > 0 {
            started = !answerSounding
            lastAgentEnd = written + agentSamples
        }
        answerSounding = agentSamples == configuration.periodSamples
        written += configuration.periodSamples
        return started
    }

    /// Barge-in: the queue and the device buffer were dropped.
    mutating func clear() {
        silenceSince = nil
        silenceWritten = 0
        if case .idle = state {} else { lastAgentEnd = written }
        answerSounding = false
        reading = false
        state = .idle
    }

    /// The device restarted empty (after an xrun or error): the silence budget restarts.
    mutating func deviceRestarted() {
        silenceSince = nil
        silenceWritten = 0
    }
}
