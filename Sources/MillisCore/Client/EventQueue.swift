#if canImport(Glibc)
import Glibc
#endif
import CSystem

/// A client's events kept for a program that takes them itself, from its own thread or
/// from its own poll/epoll/asyncio loop (`fd`), instead of (or beside) callbacks on the
/// network thread. Created with the client, so nothing is lost before the program first
/// asks.
///
/// Bounded: each event counts its payload against `limitBytes`. An event that would pass
/// the limit is dropped, and the program learns where: one error stands in the queue
/// where the dropped run began, counting what it lost. A close is never dropped: a
/// program waiting for the end must see it; nor is an event that finds the queue empty.
public final class EventQueue: @unchecked Sendable {
    public static let limitRange = (64 << 10)...(1 << 30)
    /// What an event costs beside its payload: a program that never reads cannot grow
    /// the queue with empty events either.
    static let overheadBytes = 64

    public let limitBytes: Int
    /// An eventfd whose counter is non-zero exactly while an entry is queued.
    public let fd: Int32

    private enum Entry {
        case event(SessionEvent, cost: Int)
        /// Events dropped in a row because the queue was full.
        case dropped(events: Int, bytes: Int)
    }

    private struct State {
        var entries: [Entry] = []
        var head = 0
        var bytes = 0
        /// The last entry is a `.dropped` run that further drops extend.
        var dropRunOpen = false
        var droppedTotal = 0
    }

    private let state = Locked(State())

    public init(limitBytes: Int) throws(MillisError) {
        guard Self.limitRange.contains(limitBytes) else {
            throw MillisError(.invalidArgument, "event queue limit \(limitBytes) bytes is out of range: use 0 (no queue) or \(Self.limitRange.lowerBound) to \(Self.limitRange.upperBound)")
        }
        let fd = csys_eventfd()
        guard fd >= 0 else {
            throw MillisError(.noMemory, "could not create the event queue's descriptor (eventfd: \(String(cString: strerror(errno)))): raise the process's open-file limit (ulimit -n)")
        }
        self.limitBytes = limitBytes
        self.fd = fd
    }

    deinit {
        close(fd)
    }

    /// Events dropped so far because the queue was full.
    public var droppedEvents: Int { state.withLock { $0.droppedTotal } }

    static func cost(of event: SessionEvent) -> Int {
        let payload: Int
        switch event {
        case .ready(let id, let json): payload = id.utf8.count + json.utf8.count
        case .audio(let pcm): payload = pcm.count
        case .responseText(let text, _), .transcript(let text, _): payload = text.utf8.count
        case .function(let text, let name, let json): payload = text.utf8.count + name.utf8.count + json.utf8.count
        case .close(_, let text), .error(_, let text), .log(_, let text): payload = text.utf8.count
        case .message(let method, let json): payload = method.utf8.count + json.utf8.count
        case .reconnected(let id): payload = id.utf8.count
        case .userAudioReady(let json), .turn(let json): payload = json.utf8.count
        case .open, .sessionEnded, .latency, .agentState, .reconnecting, .analyzer, .inputEnded: payload = 0
        }
        return overheadBytes + payload
    }

    /// Queues `event` (the network thread, as it is dispatched).
    public func push(_ event: SessionEvent) {
        let cost = Self.cost(of: event)
        let isClose: Bool
        if case .close = event { isClose = true } else { isClose = false }
        state.withLock { s in
            let wasEmpty = s.head == s.entries.count
            // An event bigger than the limit is kept when nothing else is queued: a
            // message the connection accepted (max_message_bytes) is never refused
            // for its size alone, and memory stays within the limit plus one message.
            if !isClose && !wasEmpty && s.bytes + cost > limitBytes {
                s.droppedTotal += 1
                if s.dropRunOpen, case .dropped(let n, let b) = s.entries[s.entries.count - 1] {
                    s.entries[s.entries.count - 1] = .dropped(events: n + 1, bytes: b + cost)
                } else {
                    s.entries.append(.dropped(events: 1, bytes: cost))
                    s.dropRunOpen = true
                }
            } else {
                s.entries.append(.event(event, cost: cost))
                s.bytes += cost
                s.dropRunOpen = false
            }
            if wasEmpty { signal() }
        }
    }

    /// The next event, or nil when none is queued.
    public func pop() -> SessionEvent? {
        state.withLock { s -> SessionEvent? in
            guard s.head < s.entries.count else { return nil }
            let entry = s.entries[s.head]
            s.entries[s.head] = .dropped(events: 0, bytes: 0)  // releases the payload now
            s.head += 1
            if s.head == s.entries.count {
                s.entries.removeAll()
                s.head = 0
                s.dropRunOpen = false  // taken: the next drop starts a new run
                drain()
            } else if s.head >= 1024 && s.head * 2 >= s.entries.count {
                s.entries.removeFirst(s.head)
                s.head = 0
            }
            switch entry {
            case .event(let event, let cost):
                s.bytes -= cost
                return event
            case .dropped(let events, let bytes):
                return .error(.noMemory, "\(events) event\(events == 1 ? "" : "s") (\(bytes) bytes) dropped here: the event queue's limit of \(limitBytes) bytes was reached. Take events sooner (millis_client_next_event), or raise the limit (millis_config_set_event_queue)")
            }
        }
    }

    /// The next event, waiting up to `timeoutMilliseconds` for one (negative: no limit).
    public func next(timeoutMilliseconds: Int32) -> SessionEvent? {
        let deadline = timeoutMilliseconds > 0
            ? MonotonicClock.now() &+ UInt64(timeoutMilliseconds) * 1_000_000 : 0
        while true {
            if let event = pop() { return event }
            var wait: Int32 = -1
            if timeoutMilliseconds == 0 { return nil }
            if timeoutMilliseconds > 0 {
                let now = MonotonicClock.now()
                guard now < deadline else { return nil }
                // Rounded up: a wait of 0 would spin until the deadline.
                wait = Int32(clamping: (deadline - now + 999_999) / 1_000_000)
            }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, wait)  // EINTR or a racing taker: look again
        }
    }

    private func signal() {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    private func drain() {
        var count: UInt64 = 0
        _ = read(fd, &count, 8)
    }
}
