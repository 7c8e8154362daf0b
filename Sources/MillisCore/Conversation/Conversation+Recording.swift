/// The recording: attached at the start or during the conversation, detached by the
/// application, completed when the conversation closes.
extension Conversation {
    /// A recording starts (attach) or stops (detach) during the conversation.
    func recording(_ recorder: Recorder, attach attaching: Bool, now: UInt64) {
        if attaching {
            // A conversation that ended meanwhile has nothing left to record.
            if session.connectionState == .idle { recorder.finish() } else { attach(recorder, now: now) }
        } else if timeline.recorder === recorder {
            audioEngine?.tapping.store(false, ordering: .releasing)
            timeline.detach()?.finish()
        }
    }

    func attach(_ recorder: Recorder, now: UInt64) {
        timeline.detach()?.finish()
        timeline.attach(recorder, now: now)
        if let engine = audioEngine {
            recorder.attachPlayedAgent(engine.playedTap)
            engine.tapping.store(true, ordering: .releasing)
        }
    }

    /// The close goes into the timeline (its line, a turn it cuts short), then the
    /// recording completes: the application hears of the close once it is.
    func completeRecording(code: Int, reason: String) {
        if let turn = timeline.event(.close(code: code, reason: reason), now: MonotonicClock.now()) {
            emitTurn(turn)
        }
        if let recorder = timeline.detach(), let failure = recorder.finishAndWait() {
            emit(.error(failure.status, failure.message))
        }
    }
}
