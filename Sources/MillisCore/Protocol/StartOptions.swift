/// The web SDK's start argument, validated. Its members travel into `initiate`
/// untouched; only the public key is added.
public struct StartOptions: Sendable {
    public let members: [(key: String, value: JSONValue)]

    /// Parses and checks `json`; the error message says which member is wrong and how.
    public init(json: String) throws(MillisError) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(json)
        } catch {
            throw MillisError(.invalidJSON, "options JSON: \(error)")
        }
        guard case .object(let members) = value else {
            throw MillisError(.invalidJSON, "options must be a JSON object like {\"agent\": {\"agent_id\": \"...\"}}")
        }
        try Self.validate(value)
        self.members = members
    }

    /// The options for a stored agent, `{"agent": {"agent_id": id}}`.
    public init(agentId: String) throws(MillisError) {
        guard !agentId.isEmpty else {
            throw MillisError(.invalidArgument, "agent id is empty: pass the id from the Millis playground")
        }
        members = [("agent", .object([("agent_id", .string(agentId))]))]
    }

    private static func validate(_ options: JSONValue) throws(MillisError) {
        guard let agent = options["agent"] else {
            throw MillisError(.invalidJSON, "options need an \"agent\" object with \"agent_id\" and/or \"agent_config\"")
        }
        guard agent.isObject else {
            throw MillisError(.invalidJSON, "options \"agent\" must be an object with \"agent_id\" and/or \"agent_config\"")
        }
        let agentId = agent["agent_id"]
        let agentConfig = agent["agent_config"]
        if let agentId {
            guard let id = agentId.stringValue, !id.isEmpty else {
                throw MillisError(.invalidJSON, "options \"agent.agent_id\" must be a non-empty string")
            }
        }
        if let agentConfig, !agentConfig.isObject {
            throw MillisError(.invalidJSON, "options \"agent.agent_config\" must be an object")
        }
        if agentId == nil && agentConfig == nil {
            throw MillisError(.invalidJSON, "options \"agent\" needs \"agent_id\" (a stored agent) or \"agent_config\" (a temporary one)")
        }
        if let metadata = options["metadata"], !metadata.isObject, metadata != .null {
            throw MillisError(.invalidJSON, "options \"metadata\" must be an object")
        }
        if let flag = options["include_metadata_in_prompt"], flag.boolValue == nil {
            throw MillisError(.invalidJSON, "options \"include_metadata_in_prompt\" must be true or false")
        }
        if let continuation = options["session_continuation"] {
            guard let id = continuation["session_id"]?.stringValue, !id.isEmpty else {
                throw MillisError(.invalidJSON, "options \"session_continuation\" must be {\"session_id\": \"<previous session id>\"}")
            }
        }
        if options["public_key"] != nil {
            throw MillisError(.invalidJSON, "options must not hold \"public_key\": set it in the client config (millis_config_set_public_key)")
        }
    }

    private init(members: [(key: String, value: JSONValue)]) {
        self.members = members
    }

    /// The same options continuing `sessionId`: what a reconnection sends, so the agent
    /// keeps its context. `sessionId` is the JSON value onready carried, sent back as it
    /// came (a number stays a number). An existing `session_continuation` is replaced in
    /// place.
    public func continuing(sessionId: JSONValue) -> StartOptions {
        let continuation = JSONValue.object([("session_id", sessionId)])
        guard members.contains(where: { $0.key == "session_continuation" }) else {
            return StartOptions(members: members + [("session_continuation", continuation)])
        }
        return StartOptions(members: members.map { $0.key == "session_continuation" ? ($0.key, continuation) : $0 })
    }

    /// The `initiate` message: the options as given, with `public_key` added.
    public func initiateMessage(publicKey: String) -> String {
        initiate(publicKeyText: JSONWriter.quoted(publicKey))
    }

    /// The `initiate` message with the key replaced by a placeholder, for logs.
    public var redactedInitiateMessage: String {
        initiate(publicKeyText: "\"<redacted>\"")
    }

    private func initiate(publicKeyText: String) -> String {
        var data = "{"
        for member in members {
            JSONWriter.writeString(member.key, to: &data)
            data += ":"
            JSONWriter.write(member.value, to: &data)
            data += ","
        }
        data += "\"public_key\":" + publicKeyText + "}"
        return "{\"method\":\"initiate\",\"data\":" + data + "}"
    }
}
