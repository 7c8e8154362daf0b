import XCTest
@testable import MillisCore

/// `Playout` driven with a scripted queue, clock and device: no threads, no devices.
final class PlayoutTests: XCTestCase {
    private let ms: UInt64 = 1_000_000

    /// 10 ms periods (160 samples at 16 kHz), a 48 kHz device with three periods of
    /// buffer, a 60 ms prebuffer and an 80 ms grace.
    private static let configuration = Playout.Configuration(
        periodSamples: 160, periodDeviceFrames: 480, deviceBufferSamples: 480,
        prebufferSamples: 960, prebufferNanoseconds: 60_000_000, graceNanoseconds: 80_000_000)

    /// The playout and the queue it reads, as the playback thread runs them.
    private struct Bench {
        var playout = Playout(PlayoutTests.configuration)
        /// Samples in the playout queue.
        var queued = 0
        /// 16 kHz samples the device holds, written but not played.
        var delay = 0
        /// Times the machine asked for the device's delay.
        var delayQueries = 0
        /// The engine's drain flag, between the playback thread and the network loop.
        let drain = PlayoutDrain()

        struct Period {
            var step: Playout.Step
            /// Agent samples read from the queue.
            var agent: Int
            /// The period started the answer sounding.
            var started: Bool
        }

        /// One period at `now`: decide, read the queue when told to, report the write.
        mutating func period(at now: UInt64, paused: Bool = false) -> Period {
            let device = delay
            var queries = 0
            let step = playout.nextPeriod(now: now, queued: queued, paused: paused,
                                          deviceDelay: { queries += 1; return device })
            delayQueries += queries
            if step.drained { drain.announce() }
            if step.withdrawDrained && drain.withdraw() {
                playout.drainWithdrawn()
            }
            if case .waitForPace = step.period { return Period(step: step, agent: 0, started: false) }
            var agent = 0
            if case .agent(let upTo) = step.period {
                agent = min(upTo, queued)
                queued -= agent
            }
            let started = playout.periodMade(agentSamples: agent, now: now)
            return Period(step: step, agent: agent, started: started)
        }

        /// Plays `samples` queued at `start` to the end, one period each 10 ms; returns
        /// the time of the period after the last one that read agent audio.
        mutating func playAnswer(_ samples: Int, from start: UInt64) -> UInt64 {
            queued += samples
            var now = start
            while queued > 0 {
                _ = period(at: now)
                now += 10_000_000
            }
            return now
        }
    }

    func testPrebufferHoldsSilenceUntilFull() {
        var b = Bench()
        XCTAssertEqual(b.period(at: 0).step.period, .silence)
        XCTAssertEqual(b.playout.phase, .idle)
        b.queued = 320
        let waiting = b.period(at: 10 * ms)
        XCTAssertEqual(waiting.step.period, .silence)
        XCTAssertEqual(waiting.agent, 0)
        XCTAssertEqual(b.playout.phase, .buffering)
        b.queued = 960
        let first = b.period(at: 20 * ms)
        XCTAssertEqual(first.step.period, .agent(upTo: 160))
        XCTAssertEqual(first.agent, 160)
        XCTAssertTrue(first.started)
        XCTAssertEqual(b.playout.phase, .playing)
        XCTAssertEqual(b.queued, 800)
    }

    func testPrebufferWaitedOutStartsWithWhatIsQueued() {
        var b = Bench()
        b.queued = 320
        _ = b.period(at: 100 * ms)
        XCTAssertEqual(b.playout.phase, .buffering)
        XCTAssertEqual(b.period(at: 159 * ms).step.period, .silence, "59 ms: still buffering")
        XCTAssertEqual(b.playout.phase, .buffering)
        let go = b.period(at: 160 * ms)
        XCTAssertEqual(go.step.period, .agent(upTo: 160))
        XCTAssertEqual(go.agent, 160)
        XCTAssertEqual(b.queued, 160)
    }

    func testPlayingStartsTheAnswerOnceAndReadsWholePeriods() {
        var b = Bench()
        b.queued = 960
        var starts = 0
        var read = 0
        for i in 0..<6 {
            let p = b.period(at: UInt64(i) * 10 * ms)
            if p.started { starts += 1 }
            read += p.agent
            XCTAssertEqual(p.agent, 160, "period \(i)")
        }
        XCTAssertEqual(starts, 1)
        XCTAssertEqual(read, 960)
        XCTAssertEqual(b.playout.phase, .playing, "a full period: not known to be dry yet")
        let dry = b.period(at: 60 * ms)
        XCTAssertEqual(dry.agent, 0)
        XCTAssertEqual(b.playout.phase, .starved)
        XCTAssertEqual(b.playout.underruns, 0, "running dry is no underrun until audio comes again")
    }

    func testStarvationThenAudioAgainIsOneUnderrun() {
        var b = Bench()
        b.queued = 1000  // six periods and 40 samples: the seventh runs dry
        for i in 0..<7 { _ = b.period(at: UInt64(i) * 10 * ms) }
        XCTAssertEqual(b.playout.phase, .starved)
        XCTAssertEqual(b.period(at: 70 * ms).step, Playout.Step(period: .silence))
        b.queued = 160
        let back = b.period(at: 80 * ms)
        XCTAssertTrue(back.step.underrun)
        XCTAssertEqual(b.playout.underruns, 1)
        XCTAssertEqual(b.playout.phase, .buffering, "the gap is bridged by a new prebuffer")
        XCTAssertEqual(back.agent, 0)
        b.queued = 960
        let resumed = b.period(at: 90 * ms)
        XCTAssertEqual(resumed.agent, 160)
        XCTAssertTrue(resumed.started, "after silence, the answer sounds again")
        XCTAssertEqual(b.playout.underruns, 1)
    }

    func testDrainedOnlyAfterTheGraceAndTheDeviceHasPlayedTheLastSample() {
        var b = Bench()
        b.queued = 1000
        for i in 0..<7 { _ = b.period(at: UInt64(i) * 10 * ms) }  // dry at 60 ms
        XCTAssertEqual(b.playout.phase, .starved)
        // 1120 written, the last agent sample ends at 1000.
        b.delay = 480
        XCTAssertFalse(b.period(at: 139 * ms).step.drained, "79 ms: within the grace")
        XCTAssertEqual(b.delayQueries, 0, "the device is not asked within the grace")
        // 1280 written, 480 of it still in the device: played up to 800 < 1000.
        XCTAssertFalse(b.period(at: 140 * ms).step.drained)
        XCTAssertEqual(b.delayQueries, 1)
        XCTAssertEqual(b.playout.phase, .starved)
        b.delay = 280  // 1440 - 280 = 1160 ≥ 1000
        let done = b.period(at: 150 * ms)
        XCTAssertTrue(done.step.drained)
        XCTAssertEqual(done.step.period, .silence)
        XCTAssertEqual(b.playout.drains, 1)
        XCTAssertEqual(b.playout.phase, .idle)
        XCTAssertFalse(b.period(at: 160 * ms).step.drained, "announced once")
        XCTAssertEqual(b.playout.drains, 1)
        XCTAssertEqual(b.playout.underruns, 0)
    }

    func testAnswerDrainsAfterTheStreamEnds() {
        var b = Bench()
        let end = b.playAnswer(1600, from: 0)  // 100 ms of answer
        XCTAssertEqual(end, 100 * ms)
        XCTAssertEqual(b.playout.phase, .playing)
        _ = b.period(at: end)
        XCTAssertEqual(b.playout.phase, .starved)
        var drainedAt: UInt64?
        var now = end + 10 * ms
        while drainedAt == nil && now < end + 500 * ms {
            if b.period(at: now).step.drained { drainedAt = now }
            now += 10 * ms
        }
        XCTAssertEqual(drainedAt, end + 80 * ms)
        XCTAssertEqual(b.playout.drains, 1)
        XCTAssertEqual(b.playout.underruns, 0)
    }

    func testRestartAfterDrainedPrebuffersAgain() {
        var b = Bench()
        let end = b.playAnswer(960, from: 0)
        _ = b.period(at: end)
        XCTAssertTrue(b.period(at: end + 80 * ms).step.drained)
        b.queued = 320
        let next = b.period(at: end + 90 * ms)
        XCTAssertTrue(next.step.withdrawDrained, "a drain the loop has not taken yet goes back")
        XCTAssertFalse(next.step.underrun)
        XCTAssertEqual(b.playout.underruns, 1, "the loop never took the drain: to the listener, a gap")
        XCTAssertEqual(b.playout.phase, .buffering)
        b.queued = 960
        let played = b.period(at: end + 100 * ms)
        XCTAssertEqual(played.agent, 160)
        XCTAssertTrue(played.started)
    }

    func testRestartAfterADrainTheLoopTookIsANewAnswer() {
        var b = Bench()
        let end = b.playAnswer(960, from: 0)
        _ = b.period(at: end)
        XCTAssertTrue(b.period(at: end + 80 * ms).step.drained)
        XCTAssertTrue(b.drain.take(queueIsEmpty: true), "the network loop takes it: the agent is idle")
        b.queued = 960
        let next = b.period(at: end + 90 * ms)
        XCTAssertTrue(next.step.withdrawDrained)
        XCTAssertEqual(b.playout.underruns, 0)
        XCTAssertEqual(next.agent, 160)
        XCTAssertTrue(next.started)
        XCTAssertEqual(b.playout.drains, 1)
    }

    /// The network loop was held up (a slow callback) while the speaker ran dry and the
    /// answer went on arriving: when it looks, audio is queued again. It leaves the drain
    /// to the playback thread, which withdraws it: a gap, an underrun, not an answer's end.
    func testTheLoopLeavesADrainWhenAudioIsQueuedAgain() {
        var b = Bench()
        let end = b.playAnswer(960, from: 0)
        _ = b.period(at: end)
        XCTAssertTrue(b.period(at: end + 80 * ms).step.drained)
        b.queued = 960  // the rest of the answer, read from the socket first
        XCTAssertFalse(b.drain.take(queueIsEmpty: b.queued == 0), "a drain with audio queued behind it is no end")
        let next = b.period(at: end + 90 * ms)
        XCTAssertTrue(next.step.withdrawDrained)
        XCTAssertEqual(b.playout.underruns, 1)
        XCTAssertFalse(b.drain.take(queueIsEmpty: true), "withdrawn: nothing left for the loop")
    }

    func testClearGoesIdleAndTheNextAnswerPrebuffers() {
        var b = Bench()
        b.queued = 3200
        _ = b.period(at: 0)
        _ = b.period(at: 10 * ms)
        XCTAssertEqual(b.playout.phase, .playing)
        b.queued = 0  // the engine discards the queue
        b.playout.clear()
        XCTAssertEqual(b.playout.phase, .idle)
        let after = b.period(at: 20 * ms)
        XCTAssertEqual(after.step.period, .silence)
        XCTAssertFalse(after.step.drained, "a cleared answer is not drained")
        for i in 3..<30 { XCTAssertFalse(b.period(at: UInt64(i) * 10 * ms).step.drained) }
        XCTAssertEqual(b.playout.drains, 0)
        b.queued = 480
        _ = b.period(at: 300 * ms)
        XCTAssertEqual(b.playout.phase, .buffering, "half the prebuffer: the next answer waits")
        b.queued = 960
        let next = b.period(at: 310 * ms)
        XCTAssertEqual(next.agent, 160)
        XCTAssertTrue(next.started)
        XCTAssertEqual(b.playout.underruns, 0)
    }

    func testClearWhileStarvedForgetsTheAnswer() {
        var b = Bench()
        b.queued = 1000
        for i in 0..<7 { _ = b.period(at: UInt64(i) * 10 * ms) }
        XCTAssertEqual(b.playout.phase, .starved)
        b.playout.clear()
        b.queued = 160
        let next = b.period(at: 80 * ms)
        XCTAssertFalse(next.step.underrun, "after a clear, audio starts a new answer")
        XCTAssertEqual(b.playout.underruns, 0)
        XCTAssertEqual(b.playout.phase, .buffering)
    }

    func testPauseHoldsTheQueueAndResumesWhereItStopped() {
        var b = Bench()
        b.queued = 960
        _ = b.period(at: 0)
        XCTAssertEqual(b.queued, 800)
        for i in 1...20 {
            let p = b.period(at: UInt64(i) * 10 * ms, paused: true)
            XCTAssertEqual(p.step.period, .silence)
        }
        XCTAssertEqual(b.queued, 800)
        XCTAssertEqual(b.playout.phase, .playing)
        let resumed = b.period(at: 210 * ms)
        XCTAssertEqual(resumed.agent, 160)
        XCTAssertTrue(resumed.started, "silence came between")
        XCTAssertEqual(b.playout.underruns, 0)
    }

    func testNoDrainWhilePaused() {
        var b = Bench()
        b.queued = 1000
        for i in 0..<7 { _ = b.period(at: UInt64(i) * 10 * ms) }
        for i in 7..<40 { XCTAssertFalse(b.period(at: UInt64(i) * 10 * ms, paused: true).step.drained) }
        XCTAssertEqual(b.playout.phase, .starved)
        XCTAssertTrue(b.period(at: 400 * ms).step.drained)
    }

    func testSilenceRunsAtMostOneDeviceBufferAheadOfRealTime() {
        var b = Bench()
        // A clockless device takes everything: three periods (the buffer) at once, then
        // one per 10 ms.
        XCTAssertEqual(b.period(at: 0).step.period, .silence)
        XCTAssertEqual(b.period(at: 0).step.period, .silence)
        XCTAssertEqual(b.period(at: 0).step.period, .silence)
        XCTAssertEqual(b.period(at: 0).step.period, .waitForPace)
        XCTAssertEqual(b.period(at: 0).step.period, .waitForPace)
        XCTAssertEqual(b.period(at: 10 * ms).step.period, .silence)
        XCTAssertEqual(b.period(at: 10 * ms).step.period, .waitForPace)
        XCTAssertEqual(b.period(at: 20 * ms).step.period, .silence)
        XCTAssertEqual(b.period(at: 20 * ms).step.period, .waitForPace)
        b.playout.deviceRestarted()
        XCTAssertEqual(b.period(at: 20 * ms).step.period, .silence, "an emptied device takes a buffer again")
        XCTAssertEqual(b.period(at: 20 * ms).step.period, .silence)
        XCTAssertEqual(b.period(at: 20 * ms).step.period, .silence)
        XCTAssertEqual(b.period(at: 20 * ms).step.period, .waitForPace)
    }

    func testAgentAudioResetsTheSilenceBudget() {
        var b = Bench()
        for _ in 0..<3 { _ = b.period(at: 0) }
        XCTAssertEqual(b.period(at: 0).step.period, .waitForPace)
        b.queued = 960
        XCTAssertEqual(b.period(at: 0).step.period, .agent(upTo: 160), "audio is never paced")
        b.queued = 0
        XCTAssertEqual(b.period(at: 0).agent, 0)
        XCTAssertEqual(b.playout.phase, .starved)
        // The silence after the answer starts a new budget: a device buffer of it again.
        XCTAssertEqual(b.period(at: 0).step.period, .silence)
        XCTAssertEqual(b.period(at: 0).step.period, .silence)
        XCTAssertEqual(b.period(at: 0).step.period, .silence)
        XCTAssertEqual(b.period(at: 0).step.period, .waitForPace)
    }

    func testWaitsForRoomAtMostOncePerPeriod() {
        var p = Playout(Self.configuration)
        var asked = 0
        XCTAssertTrue(p.waitsForRoom(deviceRoom: { asked += 1; return 479 }))
        XCTAssertFalse(p.waitsForRoom(deviceRoom: { asked += 1; return 479 }), "made after one wait")
        XCTAssertEqual(asked, 1, "the device is not asked the second time")
        XCTAssertFalse(p.waitsForRoom(deviceRoom: { asked += 1; return 480 }))
        XCTAssertFalse(p.waitsForRoom(deviceRoom: { asked += 1; return -32 }), "an error: the write reports it")
        XCTAssertEqual(asked, 3)
    }

    func testConfigurationFromSettings() {
        var settings = AudioSettings()
        settings.prebufferMilliseconds = 100
        settings.playoutGraceNanoseconds = 50_000_000
        let c = Playout.Configuration(settings: settings, deviceRate: 44_100, deviceBufferFrames: 1323)
        XCTAssertEqual(c.periodSamples, 160)
        XCTAssertEqual(c.periodDeviceFrames, 441)
        XCTAssertEqual(c.deviceBufferSamples, 480)
        XCTAssertEqual(c.prebufferSamples, 1600)
        XCTAssertEqual(c.prebufferNanoseconds, 100_000_000)
        XCTAssertEqual(c.graceNanoseconds, 50_000_000)
        XCTAssertEqual(AudioSettings().playoutGraceNanoseconds, Session.Settings(
            frameBytes: 640, readyTimeoutNanoseconds: 1, endpointDescription: "").playoutGraceNanoseconds,
            "one grace for both playouts")
    }
}
