/// The client side of the opening handshake (RFC 6455 §4.1, §4.2.2).
public struct Handshake {
    /// The GUID of RFC 6455 §1.3, appended to the key before hashing.
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    /// A response head larger than this is refused rather than buffered without end.
    public static let maxResponseHeadBytes = 16384

    public let key: String

    public init(key: String) {
        self.key = key
    }

    /// A fresh handshake with a random 16-byte nonce as its key.
    public init(random: RandomSource) {
        self.init(key: Base64.encode(random.bytes(16)))
    }

    /// The value the server must return in `Sec-WebSocket-Accept`.
    public static func acceptValue(forKey key: String) -> String {
        Base64.encode(SHA1.digest(Array((key + guid).utf8)))
    }

    /// The HTTP upgrade request for `path` on `hostHeader` (host, with ":port" when not
    /// the scheme's default). `extraHeaders` (validated by ClientConfig.addHeader) follow
    /// ours, in order; a User-Agent among them replaces `userAgent`.
    public func request(hostHeader: String, path: String, userAgent: String,
                        extraHeaders: [(name: String, value: String)] = []) -> String {
        var text = "GET \(path) HTTP/1.1\r\n"
            + "Host: \(hostHeader)\r\n"
            + "Upgrade: websocket\r\n"
            + "Connection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\n"
            + "Sec-WebSocket-Version: 13\r\n"
        if !extraHeaders.contains(where: { $0.name.lowercased() == "user-agent" }) {
            text += "User-Agent: \(userAgent)\r\n"
        }
        for header in extraHeaders {
            text += "\(header.name): \(header.value)\r\n"
        }
        return text + "\r\n"
    }

    /// Where the response head ends (the index just past "\r\n\r\n"), or nil if it is not
    /// complete yet.
    public static func headEnd(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 3..<bytes.count where bytes[i] == 0x0A && bytes[i - 1] == 0x0D && bytes[i - 2] == 0x0A && bytes[i - 3] == 0x0D {
            return i + 1
        }
        return nil
    }

    /// Checks a complete response head (status line and headers).
    public func validate(responseHead: [UInt8]) throws(WebSocketError) {
        let text = String(decoding: responseHead, as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: true).map(String.init)
        guard !lines.isEmpty else { throw WebSocketError(.handshake, "empty HTTP response to the upgrade request") }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2).map(String.init)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            throw WebSocketError(.handshake, "malformed HTTP status line '\(statusLine.prefix(80))'")
        }
        guard status == 101 else {
            let reason = parts.count > 2 ? " \(parts[2])" : ""
            throw WebSocketError(.handshake, "server answered HTTP \(status)\(reason) instead of 101 Switching Protocols")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingASCIISpaces().lowercased()
            let value = line[line.index(after: colon)...].trimmingASCIISpaces()
            headers[name] = headers[name].map { $0 + ", " + value } ?? value
        }
        guard headers["upgrade"]?.lowercased() == "websocket" else {
            throw WebSocketError(.handshake, "upgrade response lacks 'Upgrade: websocket'")
        }
        let connectionTokens = (headers["connection"] ?? "").lowercased().split(separator: ",").map { $0.trimmingASCIISpaces() }
        guard connectionTokens.contains("upgrade") else {
            throw WebSocketError(.handshake, "upgrade response lacks 'Connection: Upgrade'")
        }
        guard headers["sec-websocket-accept"] == Self.acceptValue(forKey: key) else {
            throw WebSocketError(.handshake, "Sec-WebSocket-Accept does not match the key sent")
        }
        // RFC 6455 §4.1: the client offers no extension and no subprotocol, so a server
        // that selects either (a non-empty value) speaks something the client cannot, and the connection fails.
        if let extensions = headers["sec-websocket-extensions"], !extensions.isEmpty {
            throw WebSocketError(.handshake, "server selected extension '\(extensions.prefix(80))' that the client did not offer")
        }
        if let proto = headers["sec-websocket-protocol"], !proto.isEmpty {
            throw WebSocketError(.handshake, "server selected subprotocol '\(proto.prefix(80))' that the client did not offer")
        }
    }
}

extension StringProtocol {
    func trimmingASCIISpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
