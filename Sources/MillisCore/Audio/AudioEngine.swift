#if canImport(Glibc)
import Glibc
#endif
import CAudio
import CSystem
import Synchronization

/// Device audio for one conversation: an ALSA microphone and speaker, each served by
/// its own thread, joined to the network loop by lock-free rings.
///
/// Capture thread: reads a period, mixes to mono, resamples to 16 kHz, runs the echo
/// canceller / noise suppressor / gain control in 10 ms frames, feeds the user's
/// analyser and hands frames to the network loop (`captured`, then `loopWakeFD`).
///
/// Playback thread: takes agent audio from the playout ring after a prebuffer and
/// writes it (resampled, upmixed, in the device's format); between answers, and to
/// bridge a gap in one (an underrun, counted), it writes silence at real-time pace, so
/// the device clock never stops and the echo canceller's alignment with it holds.
/// Those decisions are `Playout`'s, a pure state machine; the thread does the I/O.
/// `clear` drops the ring *and* the device buffer (snd_pcm_drop), so the speaker is
/// silent within one period; `pause` holds the queue (silence plays) and `resume`
/// continues at the exact sample.
final class AudioEngine: @unchecked Sendable {
    let settings: AudioSettings
    let counters: AudioCounters
    let agentAnalyser: Analyser
    let userAnalyser: Analyser
    private let capture: PCMStream
    private let playback: PCMStream
    private let processor: VoiceProcessor
    private let echoReference = EchoReference()

    /// Capture thread → network loop: processed 16 kHz microphone audio (1 s).
    let captured = SPSCRing(minimumCapacity: 16_000)
    /// Network loop → playback thread: agent audio (about a minute; the server may send
    /// an answer faster than real time).
    private let playout = SPSCRing(minimumCapacity: 1 << 20, onDemand: true)
    private let arrivals = ArrivalStamps()
    /// Network loop: agent samples put in the playout queue so far.
    private var queuedPosition = 0
    /// Readable when `captured` has frames, a drain is announced or `failure` holds a message.
    let loopWakeFD: Int32
    private let captureWakeFD: Int32
    private let playbackWakeFD: Int32

    private let stopping = Atomic<Bool>(false)
    private let clearRequests = Atomic<Int>(0)
    private let clearRequestedAt = Atomic<UInt64>(0)
    private let pauseRequested = Atomic<Bool>(false)
    private let captureEnabled = Atomic<Bool>(false)
    /// When the newest frame in `captured` was captured (its last sample, monotonic ns).
    let lastCapturedAt = Atomic<UInt64>(0)
    /// Announced by the playback thread when agent audio has really finished sounding.
    let drain = PlayoutDrain()
    /// A device that failed for good (its thread stopped), for the loop to report.
    let failure = Locked<String?>(nil)
    /// When the speaker began playing an answer (monotonic ns; the loop takes it, 0).
    let answerPlayedAt = Atomic<UInt64>(0)
    /// The agent's audio as played, for a recording, while `tapping`.
    let playedTap = TimedSampleRing(seconds: 5)
    let tapping = Atomic<Bool>(false)
    private var inputEndReported = false
    private var threads: [pthread_t] = []

    /// The microphone's ALSA period. wireFrameMilliseconds: how much microphone audio
    /// goes out in one message; the network loop sends nothing before a message is whole,
    /// so reading the microphone more often than that (up to 20 ms) only wakes this
    /// thread, the sound server's and the loop more often, for no earlier delivery
    /// (BENCHMARKS.md, "Device mode: where the CPU goes").
    static func capturePeriodMilliseconds(_ settings: AudioSettings, wireFrameMilliseconds: Int) -> Int {
        max(settings.periodMilliseconds, min(wireFrameMilliseconds, 20))
    }

    init(settings: AudioSettings, counters: AudioCounters, agentAnalyser: Analyser, userAnalyser: Analyser,
         wireFrameMilliseconds: Int) throws(MillisError) {
        self.settings = settings
        self.counters = counters
        self.agentAnalyser = agentAnalyser
        self.userAnalyser = userAnalyser
        if let path = settings.inputFile {
            capture = try FilePCM(inputPath: path, fast: settings.inputFast, periodMilliseconds: settings.periodMilliseconds)
        } else {
            capture = try AlsaPCM(name: settings.captureDevice, direction: .capture,
                                  periodMilliseconds: Self.capturePeriodMilliseconds(settings, wireFrameMilliseconds: wireFrameMilliseconds),
                                  periods: 8)
        }
        if let path = settings.outputFile {
            playback = try FilePCM(outputPath: path, periodMilliseconds: settings.periodMilliseconds)
        } else {
            // Three periods: the least that rides out a late wake-up of the thread without
            // an xrun, and all of it is latency the user hears.
            playback = try AlsaPCM(name: settings.playbackDevice, direction: .playback,
                                   periodMilliseconds: settings.periodMilliseconds, periods: 3)
        }
        // A file holds no room: nothing to cancel, suppress or level.
        let room = settings.inputFile == nil
        processor = try VoiceProcessor(echoCancellation: room && settings.echoCancellation,
                                       noiseSuppression: room && settings.noiseSuppression,
                                       autoGainControl: room && settings.autoGainControl,
                                       canceller: settings.echoCanceller)
        loopWakeFD = csys_eventfd()
        captureWakeFD = csys_eventfd()
        playbackWakeFD = csys_eventfd()
        guard loopWakeFD >= 0, captureWakeFD >= 0, playbackWakeFD >= 0 else {
            for fd in [loopWakeFD, captureWakeFD, playbackWakeFD] where fd >= 0 { Glibc.close(fd) }
            throw MillisError(.internal, "could not create the audio engine's eventfds: \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        stop()
        for fd in [loopWakeFD, captureWakeFD, playbackWakeFD] { Glibc.close(fd) }
    }

    /// What ALSA reported while the devices opened, for the conversation's debug log.
    var alsaNotes: [String] {
        ((capture as? AlsaPCM)?.notes ?? []) + ((playback as? AlsaPCM)?.notes ?? [])
    }

    /// The streams as `useraudioready` describes them: the capture device's own format
    /// (what the resampler converts from), the playback device's, and the processing.
    var streamDescriptionJSON: String {
        var out = ""
        JSONWriter.write(.object([("source", .string("device"))] + capture.description + [
            ("echo_cancellation", .bool(settings.echoCancellation)),
            ("echo_canceller", .string(settings.echoCanceller.name)),
            ("noise_suppression", .bool(settings.noiseSuppression)),
            ("auto_gain_control", .bool(settings.autoGainControl)),
            ("playback", .object(playback.description)),
        ]), to: &out)
        return out
    }

    func start() {
        guard threads.isEmpty else { return }
        for body in [captureMain, playbackMain] {
            let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
            var thread = pthread_t()
            if pthread_create(&thread, nil, { arg in
                let body = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
                body.run()
                return nil
            }, box) == 0 {
                threads.append(thread)
            } else {
                Unmanaged<ThreadBody>.fromOpaque(box).release()
                failure.withLock { $0 = "could not start an audio thread: \(String(cString: strerror(errno)))" }
            }
        }
    }

    /// Stops both threads (waking them at once) and closes the devices. Idempotent.
    func stop() {
        stopping.store(true, ordering: .releasing)
        Self.signal(captureWakeFD)
        Self.signal(playbackWakeFD)
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
        publishERLE()
        capture.close()
        playback.close()
    }

    /// The capture thread's figures, or the loop's after the thread has ended.
    private func publishERLE() {
        if let erle = processor.erleDecibels {
            counters.erleCentibels.store(Int((erle * 10).rounded()), ordering: .relaxed)
        }
        if let recent = processor.recentERLEDecibels {
            counters.recentERLECentibels.store(Int((recent * 10).rounded()), ordering: .relaxed)
        }
    }

    // MARK: Network loop side

    var playoutIsEmpty: Bool { playout.count == 0 }

    /// Network loop (the playout queue's writer), once an answer has sounded: the queue's
    /// memory goes back to the system until the next answer.
    func releaseIdlePlayoutMemory() { playout.releaseIdleMemory() }

    /// True once, when the input file has run out (network loop).
    func takeInputEnded() -> Bool {
        guard !inputEndReported, let file = capture as? FilePCM, file.ended.load(ordering: .acquiring) else { return false }
        inputEndReported = true
        return true
    }

    /// The input file is read faster than real time (and has not ended yet).
    var readsAhead: Bool { settings.inputFile != nil && settings.inputFast && !inputEndReported }

    /// Agent audio (PCM16 LE 16 kHz mono) for the speaker.
    /// `receivedAt`: when it was read off the socket.
    func enqueue(_ pcm: [UInt8], receivedAt: UInt64) {
        arrivals.push(.init(position: queuedPosition, receivedAt: receivedAt, ahead: playout.count))
        pcm.withUnsafeBytes { raw in
            let samples = raw.bindMemory(to: Int16.self)
            let taken = playout.write(samples)
            queuedPosition += taken
            if taken < samples.count {
                counters.playoutSamplesDropped.add(samples.count - taken, ordering: .relaxed)
            }
        }
        // No wake-up: the playback thread runs every period anyway (the device never
        // stops), and takes the audio at its next one.
        counters.playoutQueuedSamples.store(playout.count, ordering: .relaxed)
    }

    /// Barge-in: silence the speaker now, forgetting everything queued.
    /// A clear also ends a pause: the agent is idle afterwards, and its next answer plays.
    func clear() {
        pauseRequested.store(false, ordering: .releasing)
        clearRequestedAt.store(MonotonicClock.now(), ordering: .relaxed)
        clearRequests.add(1, ordering: .releasing)
        Self.signal(playbackWakeFD)
    }

    /// The session is ready: the microphone starts recording.
    func enableCapture() {
        guard !captureEnabled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Self.signal(captureWakeFD)
    }

    func pause() {
        pauseRequested.store(true, ordering: .releasing)
        Self.signal(playbackWakeFD)
    }

    func resume() {
        pauseRequested.store(false, ordering: .releasing)
        Self.signal(playbackWakeFD)
    }

    static func signal(_ fd: Int32) {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    static func consume(_ fd: Int32) {
        var value: UInt64 = 0
        _ = read(fd, &value, 8)
    }

    private func fail(_ message: String) {
        failure.withLock { $0 = message }
        Self.signal(loopWakeFD)
    }

    /// Waits until the PCM is ready or the thread is woken; false when stopping.
    /// Polls `fds` (the wake-up eventfd last, the device's before it, if `device`).
    private func wait(_ fds: inout [pollfd], timeoutMilliseconds: Int32, device: PCMStream? = nil) -> Bool {
        fds.withUnsafeMutableBufferPointer { all in
            let n = poll(all.baseAddress, nfds_t(all.count), timeoutMilliseconds)
            if n > 0, let device { device.acknowledgePoll(UnsafeMutableBufferPointer(rebasing: all[0..<(all.count - 1)])) }
        }
        if fds[fds.count - 1].revents != 0 {
            Self.consume(fds[fds.count - 1].fd)
        }
        return !stopping.load(ordering: .acquiring)
    }

    // MARK: Capture thread

    private func captureMain() {
        csys_name_thread("millis-capture")
        // This thread's ALSA notes exist from here on: ALSA reporting on a recovery
        // then writes into them without the first-use allocation of thread-local storage.
        caudio_alsa_notes_clear()
        let pcm = capture
        guard let resampler = Resampler(inputRate: pcm.rate, outputRate: 16_000) else {
            fail("could not create the capture resampler (\(pcm.rate) Hz → 16 kHz)")
            return
        }
        let frameSamples = VoiceProcessor.frameSamples
        var raw = [UInt8](repeating: 0, count: pcm.periodFrames * pcm.bytesPerFrame)
        var mono: [Float] = []
        mono.reserveCapacity(pcm.periodFrames)
        var pending: [Float] = []
        pending.reserveCapacity(4 * frameSamples + resampler.maxOutput(forInput: pcm.periodFrames))
        var frame = [Int16](repeating: 0, count: frameSamples)
        var reference = [Int16](repeating: 0, count: frameSamples)
        var fds = pcm.pollDescriptors() + [pollfd(fd: captureWakeFD, events: Int16(POLLIN), revents: 0)]
        var wakeOnly = [pollfd(fd: captureWakeFD, events: Int16(POLLIN), revents: 0)]
        let timeout = Int32(4 * pcm.periodFrames * 1000 / max(1, pcm.rate))
        let nanosPerDeviceFrame = 1_000_000_000 / Double(pcm.rate)
        var failures = 0
        /// Waits since the last period read.
        var shortWakes = 0
        var clock = StreamClock()
        var capturedIndex = 0
        let estimator = settings.echoCancellation ? EchoDelayEstimator() : nil
        var seenRestarts = 0
        // Room for one period's output, with slack for the resampler's rounding.
        let roomNeeded = resampler.maxOutput(forInput: pcm.periodFrames) + 2 * frameSamples
        // The microphone opens with start (so a bad device is start's error) but records
        // from onready on: nothing before it would be sent anyway.
        while !captureEnabled.load(ordering: .acquiring) {
            if !wait(&wakeOnly, timeoutMilliseconds: 100) { return }
        }
        pcm.start()
        while !stopping.load(ordering: .acquiring) {
            if captured.capacity - captured.count < roomNeeded {
                // The network loop is behind: leave the audio in the device buffer, where
                // a real device overruns (recovered, counted) if the wait grows long, and
                // a clockless one simply waits. Dropping here would lose audio silently.
                Self.signal(loopWakeFD)
                if !wait(&wakeOnly, timeoutMilliseconds: 2) { break }
                continue
            }
            // Whole periods only: reading whatever trickled in (a sound server's pointer
            // moves sample by sample) would wake this thread thousands of times a second.
            // A device still short of a period after a wake and a wait by the clock is
            // read anyway: a filter plugin over a sound server (an extplug: speex, a52,
            // ...) reports only what its last read left, not what the server has since
            // delivered; the read takes what there is (-EAGAIN when nothing).
            let available = pcm.available()
            let asks = available >= pcm.periodFrames || shortWakes >= 2
            let got = available < 0 ? available
                : !asks ? -Int(EAGAIN)
                : raw.withUnsafeMutableBytes { pcm.read(into: $0.baseAddress!, frames: pcm.periodFrames) }
            if got == -Int(EAGAIN) || got == 0 {
                if shortWakes > 0 && available >= 0 && available < pcm.periodFrames {
                    // Woken with less than a period there: pulse's plugin keeps its
                    // descriptor readable down to its own, smaller fragment, and polling
                    // it again would spin a core. The rest comes by the clock.
                    let missing = pcm.periodFrames - available
                    let ms = Int32(max(1, (missing * 1000 + pcm.rate - 1) / pcm.rate))
                    if !wait(&wakeOnly, timeoutMilliseconds: ms) { break }
                } else if !wait(&fds, timeoutMilliseconds: timeout, device: pcm) {
                    break
                }
                shortWakes += 1
                continue
            }
            shortWakes = 0
            if got < 0 {
                if got == -Int(EPIPE) { counters.captureOverruns.add(1, ordering: .relaxed) }
                failures += 1
                if failures > 100 || !pcm.recover(got) {
                    fail("the \(pcm.label) failed: \(AlsaPCM.describe(got))\(Alsa.causeSuffix(Alsa.takeNotes())); the microphone is off for the rest of this conversation")
                    return
                }
                pcm.start()
                clock.reset()
                continue
            }
            failures = 0
            let readAt = MonotonicClock.now()
            let delay = Double(pcm.delay() ?? 0) * nanosPerDeviceFrame
            counters.capturePeriods.add(1, ordering: .relaxed)
            mono.removeAll(keepingCapacity: true)
            raw.withUnsafeBytes { pcm.format.appendMono(from: $0.baseAddress!, frames: got, channels: pcm.channels, to: &mono) }
            mono.withUnsafeBufferPointer { resampler.process($0, into: &pending) }
            var offset = 0
            while pending.count - offset >= frameSamples {
                let later = Double(pending.count - offset - frameSamples) * 62_500  // ns per 16 kHz sample
                capturedIndex += frameSamples
                clock.observe(index: capturedIndex, at: readAt &- UInt64(max(0, delay + later)))
                let endedAt = clock.time(of: capturedIndex)
                for i in 0..<frameSamples {
                    frame[i] = SampleFormat.pcm16(pending[offset + i])
                }
                offset += frameSamples
                frame.withUnsafeMutableBufferPointer { f in
                    reference.withUnsafeMutableBufferPointer { r in
                        if processor.isActive {
                            process(f, reference: r, captureIndex: capturedIndex, capturedAt: endedAt,
                                    estimator: estimator, seenRestarts: &seenRestarts)
                        }
                    }
                    deliver(UnsafeBufferPointer(f), capturedAt: endedAt)
                }
            }
            if offset > 0 {
                pending.removeFirst(offset)
                Self.signal(loopWakeFD)
            }
            if counters.capturePeriods.load(ordering: .relaxed) % 50 == 0 {
                publishERLE()
            }
        }
    }

    /// Capture thread: one microphone frame through the echo canceller, noise
    /// suppressor and gain control, with `reference` (the speaker's audio heard in it)
    /// aligned by the delay estimator first. `seenRestarts`: the echo reference's
    /// restarts the estimator has seen.
    private func process(_ f: UnsafeMutableBufferPointer<Int16>, reference r: UnsafeMutableBufferPointer<Int16>,
                         captureIndex: Int, capturedAt: UInt64, estimator: EchoDelayEstimator?,
                         seenRestarts: inout Int) {
        echoReference.reference(captureIndex: captureIndex, capturedAt: capturedAt, into: r)
        if let estimator {
            let restarts = echoReference.restarts
            if restarts != seenRestarts {
                seenRestarts = restarts
                estimator.reset(searching: true)
            }
            if let lag = estimator.add(mic: UnsafeBufferPointer(f), reference: UnsafeBufferPointer(r)),
               abs(lag - echoReference.leadSamples) > 24 {
                echoReference.shift(by: lag - echoReference.leadSamples)
                estimator.reset(searching: false)
                counters.echoRealignments.add(1, ordering: .relaxed)
            }
            // Until the echo is found, the filter gets no reference, so it holds what it
            // learnt instead of adapting to a path that is not there (and diverging).
            if estimator.searching { r.update(repeating: 0) }
        }
        processor.process(f, reference: UnsafeBufferPointer(r))
    }

    /// Capture thread: a processed frame to the user's analyser and the network loop;
    /// counted as dropped when the loop's ring is full.
    private func deliver(_ f: UnsafeBufferPointer<Int16>, capturedAt: UInt64) {
        userAnalyser.write(f)
        if captured.write(f) < f.count {
            counters.captureFramesDropped.add(1, ordering: .relaxed)
        } else {
            lastCapturedAt.store(capturedAt, ordering: .releasing)
        }
    }

    // MARK: Playback thread

    /// Runs `Playout`: reads the queue and the device, asks it what each period is, and
    /// does the I/O (the queue, the device, the echo reference, the analyser, the tap).
    private func playbackMain() {
        csys_name_thread("millis-playback")
        caudio_alsa_notes_clear() // see captureMain
        let pcm = playback
        guard let resampler = Resampler(inputRate: 16_000, outputRate: pcm.rate) else {
            fail("could not create the playback resampler (16 kHz → \(pcm.rate) Hz)")
            return
        }
        var machine = Playout(.init(settings: settings, deviceRate: pcm.rate, deviceBufferFrames: pcm.bufferFrames))
        let chunkSamples = machine.configuration.periodSamples
        var chunk = [Int16](repeating: 0, count: chunkSamples)
        var floats = [Float](repeating: 0, count: chunkSamples)
        var deviceMono: [Float] = []
        deviceMono.reserveCapacity(resampler.maxOutput(forInput: chunkSamples) + 32)
        var out = [UInt8](repeating: 0, count: (resampler.maxOutput(forInput: chunkSamples) + 32) * pcm.bytesPerFrame)
        var outFrames = 0, outOffset = 0
        var seenClears = clearRequests.load(ordering: .acquiring)
        /// Agent samples taken from the playout queue (read or cleared) so far, and
        /// where the period being written ends: its frames' latency is known once the
        /// write is done.
        var readPosition = 0
        var measuredUpTo = 0
        var fds = pcm.pollDescriptors() + [pollfd(fd: playbackWakeFD, events: Int16(POLLIN), revents: 0)]
        var wakeOnly = [pollfd(fd: playbackWakeFD, events: Int16(POLLIN), revents: 0)]
        let timeout = Int32(4 * settings.periodMilliseconds)
        var failures = 0

        func delay16k() -> Int { (pcm.delay() ?? 0) * 16_000 / pcm.rate }

        while !stopping.load(ordering: .acquiring) {
            let clears = clearRequests.load(ordering: .acquiring)
            if clears != seenClears {
                // Barge-in: the queue and the device buffer go, so the speaker is silent
                // now, not after the 30 ms the device still holds.
                seenClears = clears
                readPosition += playout.discardAll()
                measuredUpTo = readPosition
                arrivals.removeAll()
                let asked = clearRequestedAt.load(ordering: .relaxed)
                pcm.dropAndPrepare {
                    counters.lastClearNanoseconds.store(Int(MonotonicClock.now() &- asked), ordering: .relaxed)
                }
                resampler.reset()
                echoReference.unanchor()
                outFrames = 0
                outOffset = 0
                machine.clear()
                counters.clears.add(1, ordering: .relaxed)
                counters.playoutQueuedSamples.store(0, ordering: .relaxed)
            }

            if outOffset == outFrames {
                if machine.waitsForRoom(deviceRoom: { pcm.available() }) {
                    if !wait(&fds, timeoutMilliseconds: timeout, device: pcm) { break }
                    continue
                }
                let now = MonotonicClock.now()
                let step = machine.nextPeriod(now: now, queued: playout.count,
                                              paused: pauseRequested.load(ordering: .acquiring),
                                              deviceDelay: delay16k)
                if step.withdrawDrained && drain.withdraw() {
                    machine.drainWithdrawn()
                    counters.playbackUnderruns.add(1, ordering: .relaxed)
                }
                if step.underrun {
                    counters.playbackUnderruns.add(1, ordering: .relaxed)
                }
                if step.drained {
                    drain.announce()
                    Self.signal(loopWakeFD)
                }
                if case .waitForPace = step.period {
                    if !wait(&wakeOnly, timeoutMilliseconds: Int32(settings.periodMilliseconds)) { break }
                    continue
                }
                var agentSamples = 0
                if case .agent(let upTo) = step.period {
                    agentSamples = chunk.withUnsafeMutableBufferPointer { playout.read(into: UnsafeMutableBufferPointer(rebasing: $0[0..<upTo])) }
                    readPosition += agentSamples
                }
                for i in agentSamples..<chunkSamples { chunk[i] = 0 }
                if machine.periodMade(agentSamples: agentSamples, now: now) {
                    answerPlayedAt.store(now, ordering: .releasing)
                    Self.signal(loopWakeFD)
                }
                if tapping.load(ordering: .relaxed) {
                    chunk.withUnsafeBufferPointer { playedTap.write($0, at: now &+ UInt64(delay16k()) * Playout.nanosecondsPerSample) }
                }
                chunk.withUnsafeBufferPointer { c in
                    echoReference.append(c)
                    agentAnalyser.write(c)
                    for i in 0..<chunkSamples { floats[i] = Float(c[i]) / 32768 }
                }
                deviceMono.removeAll(keepingCapacity: true)
                floats.withUnsafeBufferPointer { resampler.process($0, into: &deviceMono) }
                let needed = deviceMono.count * pcm.bytesPerFrame
                if out.count < needed { out = [UInt8](repeating: 0, count: needed) }
                deviceMono.withUnsafeBufferPointer { m in
                    out.withUnsafeMutableBytes { pcm.format.writeInterleaved(m, channels: pcm.channels, to: $0.baseAddress!) }
                }
                outFrames = deviceMono.count
                outOffset = 0
                counters.playbackPeriods.add(1, ordering: .relaxed)
                counters.playoutQueuedSamples.store(playout.count, ordering: .relaxed)
            }

            let rc = out.withUnsafeBytes { pcm.write($0.baseAddress! + outOffset * pcm.bytesPerFrame, frames: outFrames - outOffset) }
            if rc == -Int(EAGAIN) || rc == 0 {
                if !wait(&fds, timeoutMilliseconds: timeout, device: pcm) { break }
                continue
            }
            if rc < 0 {
                if rc == -Int(EPIPE) { counters.playbackXruns.add(1, ordering: .relaxed) }
                // The device restarts empty: the silence budget and the timeline with it.
                machine.deviceRestarted()
                echoReference.unanchor()
                failures += 1
                if failures > 100 || !pcm.recover(rc) {
                    let why = (pcm as? FilePCM)?.outputFailure?.message ?? AlsaPCM.describe(rc) + Alsa.causeSuffix(Alsa.takeNotes())
                    fail("the \(pcm.label) failed: \(why); the speaker is off for the rest of this conversation")
                    return
                }
                continue
            }
            failures = 0
            outOffset += rc
            if outOffset == outFrames && measuredUpTo < readPosition {
                measuredUpTo = readPosition
                noteArrivalsWritten(before: readPosition)
            }
            echoReference.anchor(delaySamples: delay16k() + (outFrames - outOffset) * 16_000 / pcm.rate,
                                 now: MonotonicClock.now())
        }
        echoReference.unanchor()
    }
}

extension AudioEngine {
    /// Playback thread: the frames that start before `position` are on the device now.
    fileprivate func noteArrivalsWritten(before position: Int) {
        let now = MonotonicClock.now()
        while let stamp = arrivals.pop(before: position) {
            let total = Int(now &- stamp.receivedAt) / 1000
            let beyond = max(0, total - stamp.ahead * 1000 / 16)
            counters.wireToDeviceMicroseconds.add(total, ordering: .relaxed)
            counters.wireToDeviceBeyondQueueMicroseconds.add(beyond, ordering: .relaxed)
            counters.wireToDeviceFrames.add(1, ordering: .relaxed)
            if total > counters.wireToDeviceMaxMicroseconds.load(ordering: .relaxed) {
                counters.wireToDeviceMaxMicroseconds.store(total, ordering: .relaxed)
            }
            if beyond > counters.wireToDeviceBeyondQueueMaxMicroseconds.load(ordering: .relaxed) {
                counters.wireToDeviceBeyondQueueMaxMicroseconds.store(beyond, ordering: .relaxed)
            }
        }
    }
}

/// A thread's body, boxed for pthread_create.
private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}
