/// Status codes, numbered exactly as `millis_status` in include/millis.h.
public enum MillisStatus: Int32, Sendable, CaseIterable {
    case ok = 0
    case invalidArgument = 1
    case invalidJSON = 2
    case invalidState = 3
    case notReady = 4
    case noMemory = 5
    case connect = 6
    case tls = 7
    case handshake = 8
    case protocolError = 9
    case messageTooBig = 10
    case badMessage = 11
    case connectionLost = 12
    case timeout = 13
    case serverClosed = 14
    case unsupported = 15
    case `internal` = 16
    case audioDevice = 17
    case file = 18

    /// The short static description returned by `millis_status_string`.
    public var summary: StaticString {
        switch self {
        case .ok: return "ok"
        case .invalidArgument: return "invalid argument"
        case .invalidJSON: return "invalid JSON"
        case .invalidState: return "invalid state for this call"
        case .notReady: return "session not ready"
        case .noMemory: return "out of memory"
        case .connect: return "could not connect"
        case .tls: return "TLS failure"
        case .handshake: return "WebSocket handshake failed"
        case .protocolError: return "WebSocket protocol error"
        case .messageTooBig: return "message too big"
        case .badMessage: return "malformed server message"
        case .connectionLost: return "connection lost"
        case .timeout: return "timed out"
        case .serverClosed: return "server closed the session"
        case .unsupported: return "unsupported"
        case .internal: return "internal error"
        case .audioDevice: return "audio device error"
        case .file: return "file error"
        }
    }
}

/// A failure with its status code and a message that says what was wrong and what to do.
public struct MillisError: Error, Equatable, CustomStringConvertible {
    public let status: MillisStatus
    public let message: String

    public init(_ status: MillisStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }
}
