/// Extra header fields for the WebSocket upgrade request (millis_config_add_header):
/// an Origin for a key limited to a site, an Authorization or routing header for a
/// proxy or gateway, a User-Agent of the application's own.
extension ClientConfig {
    /// More than this many is a mistake, not a use (a browser sends about a dozen).
    public static let maxExtraHeaders = 64
    static let maxHeaderNameBytes = 256
    static let maxHeaderValueBytes = 8192

    /// Fields the handshake writes and depends on: letting an application set them would
    /// break the upgrade or smuggle a second request.
    static let reservedHeaderNames: Set<String> = ["host", "upgrade", "connection", "content-length",
                                                   "transfer-encoding"]

    public mutating func addHeader(name: String, value: String) throws(MillisError) {
        let nameBytes = Array(name.utf8)
        guard (1...Self.maxHeaderNameBytes).contains(nameBytes.count), nameBytes.allSatisfy(Self.isTokenByte) else {
            throw MillisError(.invalidArgument, "header name '\(name.prefix(60))' is not an HTTP field name: use 1 to \(Self.maxHeaderNameBytes) letters, digits or !#$%&'*+-.^_`|~ (no spaces, colons or line breaks)")
        }
        let lower = name.lowercased()
        guard !Self.reservedHeaderNames.contains(lower), !lower.hasPrefix("sec-websocket-") else {
            throw MillisError(.invalidArgument, "header '\(name)' is written by the WebSocket handshake itself and cannot be set: Host, Upgrade, Connection, Content-Length, Transfer-Encoding and Sec-WebSocket-* are reserved")
        }
        let trimmed = value.trimmingASCIISpaces()
        guard trimmed.utf8.count <= Self.maxHeaderValueBytes else {
            throw MillisError(.invalidArgument, "value of header '\(name)' is \(trimmed.utf8.count) bytes: at most \(Self.maxHeaderValueBytes)")
        }
        // CR, LF or NUL would let a value end its line and start a header of its own.
        if let bad = trimmed.unicodeScalars.first(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }) {
            throw MillisError(.invalidArgument, "value of header '\(name)' holds the control character U+\(String(bad.value, radix: 16, uppercase: true).leftPadded(to: 4)): only tab and printable text are allowed (no CR, LF or NUL)")
        }
        guard extraHeaders.count < Self.maxExtraHeaders else {
            throw MillisError(.invalidArgument, "too many headers: at most \(Self.maxExtraHeaders) (millis_config_clear_headers removes them)")
        }
        extraHeaders.append((name, trimmed))
    }

    public mutating func clearHeaders() {
        extraHeaders.removeAll()
    }

    /// RFC 9110 §5.6.2 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
