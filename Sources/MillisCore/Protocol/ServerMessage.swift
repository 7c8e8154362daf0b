/// A control message from the server (a text frame), as docs/protocol.md lists them.
public enum ServerMessage: Equatable, Sendable {
    /// `sessionId` is the payload's `session_id` as sent (any JSON value but null), nil
    /// when there is none.
    case ready(sessionId: JSONValue?, payload: JSONValue)
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
    /// A known method whose fields have the wrong type (`problem` says which and how):
    /// reported, and handed on raw, never delivered with a field silently emptied.
    case invalid(method: String, problem: String)

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
        let data = message["data"]
        let payload = message["payload"] ?? .null
        switch method {
        case "onready":
            let id = payload["session_id"]
            return .ready(sessionId: id == .null ? nil : id, payload: payload)
        case "start_answering": return .startAnswering
        case "clear": return .clear
        case "pause": return .pause
        case "unpause": return .unpause
        case "pong": return .pong(data ?? .null)
        case "ontranscript", "onresponsetext":
            guard case .string(let text)? = data else {
                return .invalid(method: method, problem: "\"data\" \(describe(data)) where the text (a string) belongs")
            }
            let isFinal = isTruthy(payload["is_final"])
            return method == "ontranscript" ? .transcript(text: text, isFinal: isFinal)
                : .responseText(text: text, isFinal: isFinal)
        case "onfunction":
            let text: String
            switch data {
            case nil, .null?: text = ""
            case .string(let s)?: text = s
            default: return .invalid(method: method, problem: "\"data\" \(describe(data)) where a string (or nothing) belongs")
            }
            guard case .string(let name)? = payload["name"] else {
                return .invalid(method: method, problem: "\"payload.name\" \(describe(payload["name"])) where the function's name (a string) belongs")
            }
            return .function(text: text, name: name, params: payload["params"] ?? .null)
        case "onsessionended": return .sessionEnded
        default: return .other(method: method)
        }
    }

    /// JavaScript's truthiness, which the web client applies to `is_final`: "false" and
    /// "0" are final there too, so they are here.
    static func isTruthy(_ value: JSONValue?) -> Bool {
        switch value {
        case nil, .null?: return false
        case .bool(let b)?: return b
        case .number(let text)?:
            guard let number = Double(text) else { return true }
            return number != 0 && !number.isNaN
        case .string(let s)?: return !s.isEmpty
        case .array?, .object?: return true
        }
    }

    /// "is missing", "is a number (5)", … for error messages.
    static func describe(_ value: JSONValue?) -> String {
        guard let value else { return "is missing" }
        let sample = String(value.jsonText.prefix(40))
        switch value {
        case .null: return "is null"
        case .bool: return "is a boolean (\(sample))"
        case .number: return "is a number (\(sample))"
        case .string: return "is a string (\(sample))"
        case .array: return "is an array (\(sample))"
        case .object: return "is an object (\(sample))"
        }
    }
}
