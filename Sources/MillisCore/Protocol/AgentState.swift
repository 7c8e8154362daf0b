/// The agent's state as the web SDK reports it; raw values match `millis_agent_state`.
public enum AgentState: Int32, Sendable {
    case idle = 0
    case prepareAnswer = 1
    case answer = 2
    case pause = 3

    /// The web SDK's name for the state.
    public var name: StaticString {
        switch self {
        case .idle: return "idle"
        case .prepareAnswer: return "prepare_answer"
        case .answer: return "answer"
        case .pause: return "pause"
        }
    }
}

/// The connection's life cycle; raw values match `millis_connection_state`.
public enum ConnectionState: Int32, Sendable {
    case idle = 0
    case connecting = 1
    case open = 2
    case ready = 3
    case closing = 4
    case reconnecting = 5

    public var name: StaticString {
        switch self {
        case .idle: return "idle"
        case .connecting: return "connecting"
        case .open: return "open"
        case .ready: return "ready"
        case .closing: return "closing"
        case .reconnecting: return "reconnecting"
        }
    }
}

/// Log levels; raw values match `millis_log_level`.
public enum LogLevel: Int32, Sendable, Comparable {
    case none = 0
    case error = 1
    case warn = 2
    case info = 3
    case debug = 4

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}
