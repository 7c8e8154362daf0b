/// What a conversation reports to, and reads from, the client that owns it: the
/// conversation knows no `Client`, so the dependency points one way (the client holds
/// its conversation and posts it commands; the conversation calls back through this).
protocol ConversationOwner: AnyObject {
    /// Hands an event to the application (the client's handler, on the network thread).
    func emit(_ event: SessionEvent)
    /// Copies the session's state for readers on other threads.
    func publish(_ session: Session)
    /// The application takes per-turn latencies (millis_client_on_turn).
    var asksForTurns: Bool { get }
    /// The analysers, only if someone asked for them.
    var existingAnalysers: (agent: Analyser?, user: Analyser?) { get }
    var audioCounters: AudioCounters { get }
}
