/// A control message from the server (a text frame), as PROTOCOL.md lists them.
public enum ServerMessage: Equatable, Sendable {
    case ready(sessionId: String, payload: JSONValue)
    case startAnswering
    case clear
    case pause
    case unpause
    case pong(JSONValue)
    case transcript(text: String, isFinal: Bool)
    case responseText(text: String, isFinal: Bool)
    case function(text: String, name: String, params: JSONValue)
    case sessionEnded
    /// A method this version does not know; the whole message is kept by the caller.
    case other(method: String)

    /// Interprets one text message. Throws `.badMessage` for text that is not a JSON
    /// object with a string `method`.
    public static func parse(_ text: String) throws(MillisError) -> ServerMessage {
        let message: JSONValue
        do {
            message = try JSONParser.parse(text)
        } catch {
            throw MillisError(.badMessage, "server sent malformed JSON (\(error)): \(text.prefix(120))")
        }
        guard message.isObject, let method = message["method"]?.stringValue else {
            throw MillisError(.badMessage, "server message has no \"method\" string: \(text.prefix(120))")
        }
        let data = message["data"] ?? .null
        let payload = message["payload"] ?? .null
        let isFinal = payload["is_final"]?.boolValue ?? false
        switch method {
        case "onready":
            return .ready(sessionId: payload["session_id"]?.stringValue ?? "", payload: payload)
        case "start_answering": return .startAnswering
        case "clear": return .clear
        case "pause": return .pause
        case "unpause": return .unpause
        case "pong": return .pong(data)
        case "ontranscript": return .transcript(text: data.stringValue ?? "", isFinal: isFinal)
        case "onresponsetext": return .responseText(text: data.stringValue ?? "", isFinal: isFinal)
        case "onfunction":
            return .function(text: data.stringValue ?? "", name: payload["name"]?.stringValue ?? "",
                             params: payload["params"] ?? .null)
        case "onsessionended": return .sessionEnded
        default: return .other(method: method)
        }
    }
}
