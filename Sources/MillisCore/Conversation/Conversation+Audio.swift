/// Device audio mode: the engine's threads run the devices; the loop wakes the
/// conversation through the engine's eventfd when there is something to take.
extension Conversation {
    func startAudio(_ engine: AudioEngine) {
        stopAudio()
        audioEngine = engine
        for line in engine.alsaNotes { emit(.log(.debug, "ALSA: \(line)")) }
        loop.watchAudio(engine.loopWakeFD, for: self)
        engine.start()
    }

    /// Joins the audio threads (they wake at once) and closes the devices.
    func stopAudio() {
        guard let engine = audioEngine else { return }
        audioEngine = nil
        loop.unwatchAudio(engine.loopWakeFD)
        engine.stop()
    }

    /// Microphone frames to the session, a drained speaker to the agent state, a failed
    /// device to the error callback. `captureBuffer` is the loop's scratch space.
    func serviceAudio(captureBuffer: inout [Int16]) {
        guard let engine = audioEngine else { return }
        AudioEngine.consume(engine.loopWakeFD)
        if let message = engine.failure.withLock({ m -> String? in defer { m = nil }; return m }) {
            emit(.error(.audioDevice, message))
        }
        if engine.takeInputEnded() {
            perform(.emit(.inputEnded))
        }
        let playedAt = engine.answerPlayedAt.exchange(0, ordering: .acquiringAndReleasing)
        if playedAt != 0, let turn = timeline.played(at: playedAt) {
            emitTurn(turn)
        }
        let frame = VoiceProcessor.frameSamples
        var available = engine.captured.count / frame * frame
        if engine.readsAhead {
            // A file read ahead of real time waits for the socket instead of being
            // dropped by the send queue's limit: take only what half the limit holds.
            let queued = connection?.webSocket?.pendingOutputCount ?? 0
            let room = max(0, session.settings.sendQueueLimitBytes / 2 - queued)
            let frameBytes = config.frameBytes
            available = min(available, room / (frameBytes + 14) * frameBytes / 2 / frame * frame)
        }
        if available > 0 {
            let n = captureBuffer.withUnsafeMutableBufferPointer { buffer in
                engine.captured.read(into: UnsafeMutableBufferPointer(rebasing: buffer[0..<min(available, buffer.count)]))
            }
            // Before initiate (and while a cut connection waits to resume) the microphone
            // runs but nothing is sent (nor counted as dropped).
            if session.acceptsAudio {
                let pcm = captureBuffer.withUnsafeBytes { Array($0[0..<(2 * n)]) }
                let queued = connection?.webSocket?.pendingOutputCount ?? 0
                let sentBefore = session.stats.framesSent
                drive { $0.userAudio(pcm, now: MonotonicClock.now(), queuedBytes: queued) }
                // The newest frame went out now (drive writes to the socket at once).
                if session.stats.framesSent > sentBefore, let counters = owner?.audioCounters {
                    let age = max(0, Int64(bitPattern: MonotonicClock.now() &- engine.lastCapturedAt.load(ordering: .acquiring)))
                    counters.captureToWireMicroseconds.add(Int(age / 1000), ordering: .relaxed)
                    counters.captureToWireFrames.add(1, ordering: .relaxed)
                }
            }
        }
        if engine.drain.take(queueIsEmpty: engine.playoutIsEmpty) {
            engine.releaseIdlePlayoutMemory()
            drive { $0.playoutDrained() }
        }
    }
}
