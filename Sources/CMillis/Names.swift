import MillisCore

@_cdecl("millis_status_string")
public func millis_status_string(_ status: Int32) -> UnsafePointer<CChar> {
    guard let known = MillisStatus(rawValue: status) else { return staticCString("unknown status") }
    return staticCString(known.summary)
}

@_cdecl("millis_agent_state_string")
public func millis_agent_state_string(_ state: Int32) -> UnsafePointer<CChar> {
    staticCString(AgentState(rawValue: state)?.name ?? "unknown")
}

@_cdecl("millis_connection_state_string")
public func millis_connection_state_string(_ state: Int32) -> UnsafePointer<CChar> {
    staticCString(ConnectionState(rawValue: state)?.name ?? "unknown")
}
