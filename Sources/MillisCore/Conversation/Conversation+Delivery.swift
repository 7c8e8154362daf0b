/// What happens around an event on its way to the application: the speaker, the format
/// converter, the analysers and the conversation's timeline each take their part here,
/// before the application's callback runs.
extension Conversation {
    func deliver(_ event: SessionEvent) {
        let now = MonotonicClock.now()
        switch event {
        case .audio(let pcm):
            // Application mode has no speaker: handing the audio over is playing it.
            if let turn = timeline.agentAudio(pcm, now: now, playedNow: audioEngine == nil) {
                emitTurn(turn)
            }
            if let engine = audioEngine {
                engine.enqueue(pcm, receivedAt: now)
            } else if let agent = owner?.existingAnalysers.agent {
                pcm.withUnsafeBytes { agent.write($0.bindMemory(to: Int16.self)) }
            }
            emit(.audio(outputConverter?.fromWire(pcm) ?? pcm))
        case .log:
            emit(event)
        case .close:
            // Its place in the timeline was taken by completeRecording, just before.
            emit(event)
        default:
            if let turn = timeline.event(event, now: now) { emitTurn(turn) }
            emit(event)
        }
    }

    /// Barge-in, pause, resume: for the speaker, the converter and the timeline.
    func playout(_ control: Session.PlayoutControl) {
        if control == .clear {
            outputConverter?.reset()
            if let turn = timeline.cleared(now: MonotonicClock.now()) { emitTurn(turn) }
        }
        guard let engine = audioEngine else { return }
        switch control {
        case .clear: engine.clear()
        case .pause: engine.pause()
        case .resume: engine.resume()
        }
    }

    /// The agent's analyser and the microphone's description, as the web SDK gives them
    /// after its open.
    func announceStreams() {
        emit(.analyzer)
        emit(.userAudioReady(streamJSON: userAudioDescriptionJSON))
    }

    /// What `useraudioready` describes: the capture stream.
    var userAudioDescriptionJSON: String {
        if let engine = audioEngine { return engine.streamDescriptionJSON }
        return config.applicationAudioFormat.json
    }

    func flushOutputConverter() {
        if let tail = outputConverter?.flush(), !tail.isEmpty {
            emit(.audio(tail))
        }
    }

    func emitTurn(_ turn: TurnTracker.Turn) {
        let asked = owner?.asksForTurns ?? false
        if let json = timeline.report(turn, now: MonotonicClock.now(), forApplication: asked) {
            emit(.turn(json: json))
        }
    }
}
