/// What the transport's events mean for the session: the loop's I/O reports them here,
/// with the connection already torn down when it is over.
extension Conversation {
    /// The transport failed now (the session decides: resume or end).
    func failed(_ status: MillisStatus, _ message: String, closeCode: Int) {
        drive { $0.transportFailed(status, message, closeCode: closeCode, now: MonotonicClock.now()) }
    }

    /// WebSocket pings the transport answered (or coalesced) since it last said.
    func noteServerPings(received: Int, coalesced: Int) {
        session.noteServerPings(received: received, coalesced: coalesced)
        owner?.publish(session)
    }

    func received(_ event: WebSocketConnection.Event, on connection: Connection) {
        let now = MonotonicClock.now()
        switch event {
        case .opened:
            drive { $0.transportOpened(now: now) }
        case .text(let text):
            timeline.receivedText(text, now: now)
            drive { $0.receivedText(text, now: now) }
        case .binary(let bytes):
            drive { $0.receivedBinary(bytes, now: now) }
        case .closed(let code, let reason):
            loop.flush(connection)
            loop.teardown(connection)
            drive { $0.transportClosed(code: code, reason: reason, now: MonotonicClock.now()) }
        case .failed(let error):
            loop.flush(connection)
            loop.teardown(connection)
            let status: MillisStatus
            switch error.kind {
            case .handshake: status = .handshake
            case .messageTooBig: status = .messageTooBig
            case .protocolError, .invalidUTF8: status = .protocolError
            }
            let prefix = error.kind == .handshake ? "WebSocket upgrade at \(config.endpoint.url) failed: " : ""
            let code = error.kind == .handshake ? 1006 : Int(error.closeCode)
            failed(status, prefix + error.message, closeCode: code)
        }
    }

    /// The peer closed TCP.
    func ended(_ connection: Connection) {
        let failure = connection.webSocket?.transportEnded()
        loop.teardown(connection)
        guard let failure else { return }
        let url = config.endpoint.url
        if failure.kind == .handshake {
            failed(.handshake, "WebSocket upgrade at \(url) failed: \(failure.message)", closeCode: 1006)
        } else {
            failed(.connectionLost, "connection to \(url) lost: \(failure.message)", closeCode: 1006)
        }
    }

    /// Sending or receiving failed.
    func lost(_ connection: Connection, _ message: String) {
        loop.teardown(connection)
        failed(.connectionLost, message, closeCode: 1006)
    }
}
