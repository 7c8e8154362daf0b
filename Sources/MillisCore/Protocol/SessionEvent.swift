/// What the application hears about: one case per callback of include/millis.h.
public enum SessionEvent: Equatable, Sendable {
    case open
    case ready(sessionId: String, payloadJSON: String)
    case sessionEnded
    case audio([UInt8])
    case responseText(String, isFinal: Bool)
    case transcript(String, isFinal: Bool)
    case function(text: String, name: String, paramsJSON: String)
    case latency(milliseconds: Double)
    case agentState(AgentState)
    case close(code: Int, reason: String)
    case error(MillisStatus, String)
    case message(method: String, json: String)
    case log(LogLevel, String)
    case reconnecting(attempt: Int, delayMilliseconds: Int)
    case reconnected(sessionId: String)
    /// The agent's audio analyser is ready (the web SDK's `analyzer`): with the open.
    case analyzer
    /// The microphone stream is ready (`useraudioready`): its description as JSON.
    case userAudioReady(streamJSON: String)
    /// The audio input file ended (silence follows).
    case inputEnded
    /// An agent turn's latency breakdown (millis_turn_cb's JSON).
    case turn(json: String)
}
