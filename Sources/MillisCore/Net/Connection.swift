#if canImport(Glibc)
import Glibc
#endif
import CCurl

/// The transport of one conversation: a curl easy handle (DNS, TCP, TLS, proxies) and,
/// once curl has connected, the WebSocket over its socket. Used only on the network
/// loop's thread.
///
/// A plain (ws://) connection leaves curl once connected: the socket is duplicated and
/// the handle freed, and bytes go through send and recv directly. curl's per-handle
/// state is about 10 KiB, and its send and receive path (a walk of the connection cache
/// and a chain of filters) cost more than the system call under it. A TLS connection
/// keeps curl, which holds the TLS session.
final class Connection {
    unowned let conversation: Conversation
    /// nil once the socket is ours (`ownSocket`) or the connection is torn down.
    var easy: UnsafeMutableRawPointer?
    /// curl's detailed message for the last failure (CURLOPT_ERRORBUFFER), while curl
    /// holds the connection.
    let errorBuffer: UnsafeMutablePointer<CChar>
    /// The socket, once curl has connected; -1 before.
    var fd: Int32 = -1
    var webSocket: WebSocketConnection?
    /// The epoll events currently registered for `fd`.
    var registeredEvents: UInt32 = 0
    var isClosed = false
    /// The connection cache it was given (CurlSharePool), while curl holds it.
    var shareIndex: Int?

    enum IOResult {
        /// So many bytes moved (more than zero).
        case moved(Int)
        /// The socket cannot take or give more now.
        case again
        /// The peer closed the connection (receiving only).
        case ended
        case failed(String)
    }

    init?(conversation: Conversation) {
        guard let easy = curl_easy_init() else { return nil }
        self.conversation = conversation
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

    /// Keeps a duplicate of curl's socket, so that curl's handle can go (its cleanup
    /// closes only its own descriptor). Returns the handle for the caller to free, or
    /// nil when the duplicate could not be made (curl then stays).
    func ownSocket() -> UnsafeMutableRawPointer? {
        guard let easy, fd >= 0 else { return nil }
        let own = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard own >= 0 else { return nil }
        fd = own
        self.easy = nil
        return easy
    }

    /// Writes from `bytes`.
    func send(_ bytes: UnsafeRawBufferPointer) -> IOResult {
        if let easy {
            var sent = 0
            let rc = curl_easy_send(easy, bytes.baseAddress, bytes.count, &sent)
            if rc == CURLE_AGAIN { return .again }
            return rc == CURLE_OK ? .moved(sent) : .failed(curlMessage(rc))
        }
        while true {
            // MSG_NOSIGNAL: a closed peer is an error to report, not a SIGPIPE for the process.
            let n = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return .moved(n) }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return .again }
            return .failed(String(cString: strerror(errno)))
        }
    }

    /// Reads into `buffer`.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> IOResult {
        if let easy {
            var received = 0
            let rc = curl_easy_recv(easy, buffer.baseAddress, buffer.count, &received)
            if rc == CURLE_AGAIN { return .again }
            guard rc == CURLE_OK else { return .failed(curlMessage(rc)) }
            return received == 0 ? .ended : .moved(received)
        }
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n > 0 { return .moved(n) }
            if n == 0 { return .ended }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return .again }
            return .failed(String(cString: strerror(errno)))
        }
    }

    /// Whether bytes may sit decrypted inside curl where epoll cannot see them (TLS).
    var mayHoldBufferedInput: Bool { easy != nil && conversation.config.endpoint.secure }
}
