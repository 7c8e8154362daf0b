/// A WebSocket endpoint URL (`ws://` or `wss://`), checked and split for curl and the
/// upgrade request.
public struct Endpoint: Equatable, Sendable {
    public static let defaultURL = "wss://api-west.millis.ai:8080/millis"

    /// The URL as given.
    public let url: String
    public let secure: Bool
    /// The host as written in the URL (IPv6 literals keep their brackets).
    public let host: String
    public let port: Int
    /// Path and query, starting with "/".
    public let path: String

    public init(_ text: String) throws(MillisError) {
        func bad(_ why: String) -> MillisError {
            MillisError(.invalidArgument, "endpoint '\(text.prefix(200))' \(why); expected ws://host[:port][/path] or wss://host[:port][/path]")
        }
        if text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            throw bad("contains spaces or control characters")
        }
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("wss://") {
            secure = true
            rest = text.dropFirst(6)
        } else if lower.hasPrefix("ws://") {
            secure = false
            rest = text.dropFirst(5)
        } else {
            throw bad("is not a WebSocket URL")
        }
        if rest.contains("#") { throw bad("has a fragment") }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var remainder = String(rest[authorityEnd...])
        if remainder.isEmpty || remainder.first == "?" { remainder = "/" + remainder }
        if authority.contains("@") { throw bad("has user information; put credentials in the config, not the URL") }
        var hostPart = Substring(authority)
        var portText: Substring?
        if hostPart.first == "[" {
            guard let close = hostPart.firstIndex(of: "]") else { throw bad("has an unterminated IPv6 address") }
            let after = hostPart[hostPart.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw bad("has junk after the IPv6 address") }
                portText = after.dropFirst()
            }
            hostPart = hostPart[...close]
        } else if let colon = hostPart.lastIndex(of: ":") {
            portText = hostPart[hostPart.index(after: colon)...]
            hostPart = hostPart[..<colon]
        }
        guard !hostPart.isEmpty, hostPart != "[]" else { throw bad("has no host") }
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let port = Int(portText), (1...65535).contains(port) else {
                throw bad("has an invalid port '\(portText)' (1 to 65535)")
            }
            self.port = port
        } else {
            port = secure ? 443 : 80
        }
        url = text
        host = String(hostPart)
        path = remainder
    }

    /// The URL curl connects to (it knows http/https, not ws/wss, in 7.88).
    public var curlURL: String { "\(secure ? "https" : "http")://\(host):\(port)\(path)" }

    /// The Host header: the port only when it is not the scheme's default.
    public var hostHeader: String {
        port == (secure ? 443 : 80) ? host : "\(host):\(port)"
    }
}
