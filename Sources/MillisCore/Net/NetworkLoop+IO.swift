#if canImport(Glibc)
import Glibc
#endif
import CSystem

/// The WebSocket's bytes: written as the socket takes them, read as epoll reports them
/// (level-triggered), through curl while it holds the TLS session. Here because the
/// epoll registrations, the descriptor table and the read buffer (one for every
/// connection) are the loop's; what the bytes mean is the conversation's
/// (Conversation+Transport.swift).
extension NetworkLoop {
    /// Writes what the WebSocket has queued; asks epoll for writability while some is left.
    func flush(_ connection: Connection) {
        guard !connection.isClosed, connection.fd >= 0, let ws = connection.webSocket else { return }
        var failure: String?
        ws.drainOutput { bytes in
            var total = 0
            while total < bytes.count {
                switch connection.send(UnsafeRawBufferPointer(rebasing: bytes[total...])) {
                case .moved(let n): total += n
                case .again, .ended: return total
                case .failed(let message): failure = message; return total
                }
            }
            return total
        }
        let pending = ws.pendingOutputCount > 0
        if let failure {
            connection.conversation.lost(connection, "sending to \(connection.conversation.config.endpoint.url) failed: \(failure)")
            return
        }
        updateInterest(connection, wantWrite: pending)
    }

    private func updateInterest(_ connection: Connection, wantWrite: Bool) {
        let wanted = Self.readable | (wantWrite ? Self.writable : 0)
        guard wanted != connection.registeredEvents else { return }
        let op = connection.registeredEvents == 0 ? Self.add : Self.modify
        if csys_epoll_ctl(epollFD, op, connection.fd, wanted) != 0 && errno == EEXIST {
            csys_epoll_ctl(epollFD, Self.modify, connection.fd, wanted)
        }
        connection.registeredEvents = wanted
    }

    func handleIO(_ connection: Connection, flags: UInt32) {
        if flags & Self.writable != 0 {
            flush(connection)
        }
        guard flags & (Self.readable | Self.failed) != 0 else { return }
        // Read until curl says AGAIN: TLS may hold decrypted bytes the socket no longer shows.
        while !connection.isClosed {
            let result = readBuffer.withUnsafeMutableBytes { connection.receive(into: $0) }
            let received: Int
            switch result {
            case .again:
                return
            case .failed(let message):
                connection.conversation.lost(connection, "reading from \(connection.conversation.config.endpoint.url) failed: \(message)")
                return
            case .ended:
                connection.conversation.ended(connection)
                return
            case .moved(let n):
                received = n
            }
            guard let ws = connection.webSocket else { return }
            let pingsBefore = ws.pingsReceived, coalescedBefore = ws.pongsCoalesced
            let events = readBuffer.withUnsafeBytes { buffer in
                ws.receive(UnsafeRawBufferPointer(rebasing: buffer[0..<received]))
            }
            if ws.pingsReceived != pingsBefore {
                connection.conversation.noteServerPings(received: ws.pingsReceived &- pingsBefore,
                                                        coalesced: ws.pongsCoalesced &- coalescedBefore)
            }
            for event in events where !connection.isClosed {
                connection.conversation.received(event, on: connection)
            }
            if !connection.isClosed { flush(connection) }
            // A short read emptied the socket: epoll (level-triggered) reports the next
            // bytes, so asking again would only cost a recv that says EAGAIN. TLS may
            // hold decrypted bytes the socket no longer shows: read those until AGAIN.
            if received < readBuffer.count && !connection.mayHoldBufferedInput { break }
        }
    }

    /// Releases the socket and the curl handle. Nothing more is reported for it.
    func teardown(_ connection: Connection) {
        guard !connection.isClosed else { return }
        connection.isClosed = true
        if connection.fd >= 0 {
            if connection.registeredEvents != 0 { csys_epoll_ctl(epollFD, Self.delete, connection.fd, 0) }
            connectionsByFD[connection.fd] = nil
        }
        if let easy = connection.easy {
            releaseCurl(connection, easy)
            // curl closed the socket with its handle.
        } else if connection.fd >= 0 {
            close(connection.fd)
        }
        if connection.conversation.connection === connection { connection.conversation.connection = nil }
    }
}

