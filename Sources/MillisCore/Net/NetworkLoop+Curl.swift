#if canImport(Glibc)
import Glibc
#endif
import CCurl
import CSystem

/// Connecting: curl's multi interface resolves, connects, sets up TLS and proxies
/// without blocking, on the loop's epoll and timer; once connected, the socket is handed
/// to the WebSocket (NetworkLoop+IO.swift).
extension NetworkLoop {
    /// Starts connecting `conversation` (its session's `.connect`).
    func connect(_ conversation: Conversation) {
        guard isUsable, let multi, let connection = Connection(conversation: conversation), let easy = connection.easy else {
            conversation.failed(.internal, "the network loop could not start (epoll, eventfd or curl unavailable)", closeCode: 1006)
            return
        }
        let config = conversation.config
        let endpoint = config.endpoint
        ccurl_easy_setopt_string(easy, CURLOPT_URL, endpoint.curlURL)
        ccurl_easy_setopt_long(easy, CURLOPT_CONNECT_ONLY, 1)
        ccurl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        ccurl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(config.readyTimeoutMilliseconds))
        ccurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, connection.errorBuffer)
        // curl reads nothing into its own buffer here (the WebSocket reads through
        // curl_easy_recv into the loop's), so its 16 KiB default is memory for nothing.
        ccurl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, 1024)
        if let (share, index) = shares.acquire() {
            ccurl_easy_setopt_pointer(easy, CURLOPT_SHARE, share)
            connection.shareIndex = index
        }
        if endpoint.secure {
            if let caFile = config.caFile {
                ccurl_easy_setopt_string(easy, CURLOPT_CAINFO, caFile)
            }
            if config.tlsVerificationDisabled {
                ccurl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 0)
                ccurl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 0)
                conversation.emit(.log(.warn, "TLS certificate verification is DISABLED for \(endpoint.url) (millis_config_set_tls_verification_disabled_insecure): anyone on the network path can read and alter this conversation, public key included"))
            }
        }
        conversation.connection = connection
        connectionsByEasy[easy] = connection
        if curl_multi_add_handle(multi, easy) != CURLM_OK {
            teardown(connection)
            conversation.failed(.internal, "curl refused the connection handle", closeCode: 1006)
        }
    }

    func curlAction(_ fd: Int32, _ mask: Int32) {
        guard let multi else { return }
        var running: Int32 = 0
        curl_multi_socket_action(multi, fd, mask, &running)
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard ccurl_msg_is_done(message) != 0, let easy = ccurl_msg_easy(message),
                  let connection = connectionsByEasy[easy], !connection.isClosed else { continue }
            connected(connection, result: ccurl_msg_result(message))
        }
    }

    /// curl finished connecting (or failed to): take the socket over for the WebSocket.
    private func connected(_ connection: Connection, result: CURLcode) {
        let conversation = connection.conversation
        let config = conversation.config
        let endpoint = config.endpoint
        guard result == CURLE_OK else {
            let status: MillisStatus = Self.isTLSFailure(result) ? .tls : .connect
            let message = Self.connectFailureMessage(result, endpoint: endpoint, caFile: config.caFile,
                                                     detail: connection.curlMessage(result))
            teardown(connection)
            conversation.failed(status, message, closeCode: 1006)
            return
        }
        var socket: curl_socket_t = -1
        if let easy = connection.easy { ccurl_easy_getinfo_socket(easy, &socket) }
        guard socket >= 0 else {
            teardown(connection)
            conversation.failed(.connect, "curl connected to \(endpoint.url) but gave no socket", closeCode: 1006)
            return
        }
        connection.fd = socket
        Self.capKernelSendBuffer(socket)
        // Out of epoll under curl's number before anything else: a registration lives
        // as long as the socket does, whichever descriptor closes.
        if curlFDs.remove(socket) != nil { csys_epoll_ctl(epollFD, Self.delete, socket, 0) }
        if !endpoint.secure, let easy = connection.ownSocket() {
            releaseCurl(connection, easy)
        }
        connectionsByFD[connection.fd] = connection
        connection.webSocket = WebSocketConnection(hostHeader: endpoint.hostHeader, path: endpoint.path,
                                                   maxMessageBytes: config.maxMessageBytes,
                                                   userAgent: "libmillis/\(MillisVersion.string)",
                                                   extraHeaders: config.extraHeaders, random: random)
        conversation.emit(.log(.debug, "connected to \(endpoint.host):\(endpoint.port); upgrading"))
        flush(connection)
    }

    /// Audio must wait in the send queue, where it is bounded, counted and dropped
    /// oldest-last, not in the kernel: an autotuned send buffer grows to megabytes
    /// (minutes of stale audio behind a stalled server, and no backpressure to see).
    /// One second of 16 kHz PCM16 still covers any path's bandwidth-delay product for
    /// a voice stream. Linux doubles the value for its own bookkeeping.
    static let kernelSendBufferBytes: Int32 = 32 * 1024

    private static func capKernelSendBuffer(_ socket: Int32) {
        var bytes = kernelSendBufferBytes
        // Failure only loses the cap, never the connection.
        _ = setsockopt(socket, SOL_SOCKET, SO_SNDBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
    }

    /// What went wrong while connecting, and what to do about it.
    static func connectFailureMessage(_ code: CURLcode, endpoint: Endpoint, caFile: String?, detail: String) -> String {
        switch code {
        case CURLE_PEER_FAILED_VERIFICATION:
            return "TLS certificate verification failed for \(endpoint.url): \(detail); if the server uses a private or self-signed CA, pass it with millis_config_set_ca_file"
        case CURLE_SSL_CACERT_BADFILE:
            return "could not use the CA file '\(caFile ?? "(system store)")' for \(endpoint.url): \(detail); check the path and that it holds PEM certificates"
        default:
            let what = isTLSFailure(code) ? "set up TLS with" : "connect to"
            return "could not \(what) \(endpoint.url): \(detail)"
        }
    }

    static func isTLSFailure(_ code: CURLcode) -> Bool {
        [CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
         CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
         CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
         CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT].contains(code)
    }

    static let curlSocketCallback: ccurl_socket_cb = { _, socket, what, userp, _ in
        guard let userp else { return 0 }
        let loop = Unmanaged<NetworkLoop>.fromOpaque(userp).takeUnretainedValue()
        loop.curlWantsSocket(socket, what: what)
        return 0
    }

    static let curlTimerCallback: ccurl_timer_cb = { _, timeoutMs, userp in
        guard let userp else { return 0 }
        let loop = Unmanaged<NetworkLoop>.fromOpaque(userp).takeUnretainedValue()
        loop.curlDeadline = timeoutMs < 0 ? nil : MonotonicClock.now() + UInt64(timeoutMs) * 1_000_000
        return 0
    }

    private func curlWantsSocket(_ fd: Int32, what: Int32) {
        // Once a socket carries a WebSocket it is ours; curl's late wishes are ignored.
        guard connectionsByFD[fd] == nil else { return }
        if what == CURL_POLL_REMOVE {
            if curlFDs.remove(fd) != nil { csys_epoll_ctl(epollFD, Self.delete, fd, 0) }
            return
        }
        let events = (what & CURL_POLL_IN != 0 ? Self.readable : 0) | (what & CURL_POLL_OUT != 0 ? Self.writable : 0)
        if curlFDs.contains(fd) {
            csys_epoll_ctl(epollFD, Self.modify, fd, events)
        } else {
            curlFDs.insert(fd)
            if csys_epoll_ctl(epollFD, Self.add, fd, events) != 0 && errno == EEXIST {
                csys_epoll_ctl(epollFD, Self.modify, fd, events)
            }
        }
    }

    /// Frees a connection's curl handle (with a socket curl still owns, closes it).
    func releaseCurl(_ connection: Connection, _ easy: UnsafeMutableRawPointer) {
        connectionsByEasy[easy] = nil
        if let multi { curl_multi_remove_handle(multi, easy) }
        curl_easy_cleanup(easy)
        connection.easy = nil
        if let index = connection.shareIndex {
            connection.shareIndex = nil
            shares.release(index)
        }
    }
}
