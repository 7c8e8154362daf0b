/// What the speaker played, on the speaker's own timeline, so the capture thread can
/// find the samples that were sounding when each microphone frame was captured: the
/// echo canceller's reference, aligned for the device latency.
///
/// The playback thread appends every 16 kHz sample it hands to the device and, after
/// each write, reports that sample index `written − delay` is sounding now; a
/// `StreamClock` turns those jittery reports into a steady timeline. The capture thread asks
/// for the samples sounding at a past moment. Both are audio threads; the lock is
/// held for a copy of a few hundred samples.
final class EchoReference: @unchecked Sendable {
    private struct State {
        var ring: [Int16]
        var written = 0
        var clock = StreamClock()
        /// Speaker index minus microphone index of the same moment. Both devices run
        /// on one clock (a card, a sound server), so once measured it holds to the
        /// sample, free of the jitter of every single delay report.
        var offset: Int?
        var restarts = 0
    }
    private let state: Locked<State>
    private let mask: Int
    /// The reference runs this much ahead of the estimate (it holds samples that sound
    /// `lead` later): an echo that arrives after its reference is modelled by the
    /// filter's taps, one that arrives before it cannot be cancelled at all, so the
    /// estimate's error (PulseAudio's reported latency is off by 10 to 20 ms, measured)
    /// must fall on the late side. It costs that much of the filter's tail.
    let leadSamples: Int

    init(seconds: Int = 2, leadMilliseconds: Int = 20) {
        var size = 1024
        while size < seconds * 16_000 { size <<= 1 }
        state = Locked(State(ring: [Int16](repeating: 0, count: size)))
        mask = size - 1
        leadSamples = leadMilliseconds * 16
    }

    /// Playback thread: `samples` were just written to the device.
    func append(_ samples: UnsafeBufferPointer<Int16>) {
        state.withLock { s in
            for x in samples {
                s.ring[s.written & mask] = x
                s.written += 1
            }
        }
    }

    /// Playback thread: `delay16k` samples are queued in the device, so index
    /// written − delay16k is sounding at `now`.
    func anchor(delaySamples: Int, now: UInt64) {
        state.withLock { s in s.clock.observe(index: s.written - delaySamples, at: now) }
    }

    /// Playback stopped (pause, device closed): nothing is sounding any more.
    func unanchor() {
        state.withLock { s in
            s.clock.reset()
            s.restarts += 1
        }
    }

    /// How many times the speaker stopped (drop, xrun, end): each time the real latency
    /// may have moved.
    var restarts: Int { state.withLock { $0.restarts } }

    /// Capture thread: the echo was found `samples` later than the reference puts it
    /// (EchoDelayEstimator); moves the reference by that much.
    func shift(by samples: Int) {
        state.withLock { s in
            if let offset = s.offset { s.offset = offset - samples }
        }
    }

    /// Capture thread: fills `out` with the samples that sounded when microphone
    /// sample `captureIndex` (the end of the frame) was captured, at about `time`
    /// (zeros for whatever the timeline does not hold).
    func reference(captureIndex: Int, capturedAt time: UInt64, into out: UnsafeMutableBufferPointer<Int16>) {
        state.withLock { s in
            guard s.clock.isValid else {
                out.update(repeating: 0)
                return
            }
            let observed = s.clock.index(at: time) - captureIndex
            // Measured once from the delay reports, then corrected from the signals
            // (`shift`); measured again only when the reports disagree by more than
            // 100 ms, which no jitter or restart explains (an xrun that lost audio).
            if s.offset == nil || abs(observed - s.offset!) > 1600 { s.offset = observed }
            let end = captureIndex + s.offset! + leadSamples
            let start = end - out.count
            for i in 0..<out.count {
                let index = start + i
                let valid = index >= 0 && index < s.written && index > s.written - s.ring.count
                out[i] = valid ? s.ring[index & mask] : 0
            }
        }
    }
}
