import CCurl

/// The transport of one conversation: a curl easy handle (DNS, TCP, TLS, proxies) and,
/// once curl has connected, the WebSocket over its socket. Used only on the network
/// loop's thread.
final class Connection {
    unowned let client: Client
    let easy: UnsafeMutableRawPointer
    /// curl's detailed message for the last failure (CURLOPT_ERRORBUFFER).
    let errorBuffer: UnsafeMutablePointer<CChar>
    /// The socket, once curl has connected; -1 before.
    var fd: Int32 = -1
    var webSocket: WebSocketConnection?
    /// The epoll events currently registered for `fd`.
    var registeredEvents: UInt32 = 0
    var isClosed = false

    init?(client: Client) {
        guard let easy = curl_easy_init() else { return nil }
        self.client = client
        self.easy = easy
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        errorBuffer.deallocate()
    }

    /// curl's own words for a failure, with the detail from the error buffer.
    func curlMessage(_ code: CURLcode) -> String {
        let summary = String(cString: curl_easy_strerror(code))
        let detail = String(cString: errorBuffer)
        return detail.isEmpty ? summary : "\(summary) (\(detail))"
    }
}
