/// What happens around an event on its way to the application, and to the speaker's
/// controls: the audio engine, the format converters, the analysers and the
/// conversation's timeline each take their part here, on the network loop, before the
/// application's callback runs.
extension NetworkLoop {
    func deliver(_ event: SessionEvent, _ client: Client) {
        let now = MonotonicClock.now()
        switch event {
        case .audio(let pcm):
            // Application mode has no speaker: handing the audio over is playing it.
            if let turn = client.timeline.agentAudio(pcm, now: now, playedNow: client.audioEngine == nil) {
                emitTurn(turn, client)
            }
            if let engine = client.audioEngine {
                engine.enqueue(pcm, receivedAt: now)
            } else if let agent = client.existingAnalysers.agent {
                pcm.withUnsafeBytes { agent.write($0.bindMemory(to: Int16.self)) }
            }
            client.emit(.audio(client.outputConverter?.fromWire(pcm) ?? pcm))
            return
        case .log:
            client.emit(event)
            return
        default:
            if let turn = client.timeline.event(event, now: now) { emitTurn(turn, client) }
        }
        switch event {
        case .open:
            // The microphone streams from initiate on, as the web client's does from the
            // socket's opening: the user's first words while the agent gets ready count.
            client.audioEngine?.enableCapture()
            client.emit(.open)
            client.emit(.analyzer)
            client.emit(.userAudioReady(streamJSON: client.userAudioDescriptionJSON))
        case .agentState(.idle):
            // The agent's audio has ended: what the format converter still holds goes out
            // before the state says so.
            if let tail = client.outputConverter?.flush(), !tail.isEmpty {
                client.emit(.audio(tail))
            }
            client.emit(event)
        case .close:
            // The files are complete before the application hears of the close: the
            // output file (the engine closes it) and the recording.
            stopAudio(client)
            if let recorder = client.timeline.detach(), let failure = recorder.finishAndWait() {
                client.emit(.error(failure.status, failure.message))
            }
            client.emit(event)
        default:
            client.emit(event)
        }
    }

    /// Barge-in, pause, resume: for the speaker, the converter and the timeline.
    func playout(_ control: Session.PlayoutControl, _ client: Client) {
        if control == .clear {
            client.outputConverter?.reset()
            if let turn = client.timeline.cleared(now: MonotonicClock.now()) { emitTurn(turn, client) }
        }
        guard let engine = client.audioEngine else { return }
        switch control {
        case .clear: engine.clear()
        case .pause: engine.pause()
        case .resume: engine.resume()
        }
    }

    func emitTurn(_ turn: TurnTracker.Turn, _ client: Client) {
        let asked = client.reportsTurns.load(ordering: .relaxed)
        if let json = client.timeline.report(turn, now: MonotonicClock.now(), forApplication: asked) {
            client.emit(.turn(json: json))
        }
    }
}
