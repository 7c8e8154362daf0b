#if canImport(Glibc)
import Glibc
#endif
import CCurl
import CSystem
import Synchronization

/// The one network thread of the process, a reactor: it serves every client's
/// conversation. curl's multi interface drives connecting (DNS, TCP, TLS, proxies)
/// without blocking (NetworkLoop+Curl.swift), then the WebSocket runs over the socket
/// curl hands over (NetworkLoop+IO.swift), all multiplexed by one epoll with the audio
/// engines' eventfds. API calls reach it as commands through a queue and an eventfd;
/// timers come from a heap of session deadlines. What each of these means for a
/// conversation is the `Conversation`'s to decide.
final class NetworkLoop: @unchecked Sendable {
    enum Command {
        case start(Conversation, StartRequest)
        /// A recording starts (attach) or stops (detach) during the conversation.
        case recording(Conversation, Recorder, attach: Bool)
        case stop(Conversation)
        case audio(Conversation, [UInt8])
        case json(Conversation, String)
        case mute(Conversation, Bool)
        /// With an eventfd to signal once the client's files are complete (-1: none).
        case destroy(Conversation, completion: Int32)
    }

    /// A start's payload, boxed: the queue copies commands, and the audio command,
    /// 50 a second per client, should not be as large as the largest case.
    final class StartRequest {
        let options: StartOptions
        /// The opened audio engine in device audio mode.
        let engine: AudioEngine?
        /// The recording asked for.
        let recorder: Recorder?

        init(_ options: StartOptions, engine: AudioEngine?, recorder: Recorder?) {
            self.options = options
            self.engine = engine
            self.recorder = recorder
        }
    }

    /// The loop of this process, created on first use.
    ///
    /// Not a plain `static let`: fork() copies the parent's loop into the child with its
    /// "started" flag set and its thread gone (only the forking thread survives a fork),
    /// so a client created in the child would queue its start where nothing reads it and
    /// never connect, fail or close. A loop therefore belongs to the process that made
    /// it, and a process that finds another's makes its own: a new epoll instance, curl
    /// multi handle, eventfd, command queue and thread.
    ///
    /// The parent's loop stays in the child, leaked on purpose and never used again:
    /// - its epoll instance is shared with the parent (fork copies the descriptor, not
    ///   the instance), so an epoll_ctl or epoll_wait from the child would change or
    ///   steal the parent's registrations and events;
    /// - its curl handles drive the parent's connections: curl_multi_cleanup or
    ///   curl_easy_cleanup would send TLS close_notify alerts on the parent's sockets,
    ///   and a WebSocket close would end the parent's conversations;
    /// - its locks (the command queue's) may have been held by a parent thread at the
    ///   moment of the fork, and then stay locked in the child forever.
    /// Only the child's copies of its epoll and eventfd descriptors are closed: that
    /// frees two descriptors and changes nothing for the parent. The copies of the
    /// parent's sockets stay open (which of them were open at the fork cannot be read
    /// safely from the old loop's tables, which its thread may have been changing), so
    /// the child holds them until it exits or calls exec.
    ///
    /// Nothing else of the engine is process-wide: the timers, curl shares and random
    /// pool live in the loop (the child's draws fresh bytes from the kernel), the audio
    /// engines and their threads in the parent's clients, which the child does not use
    /// (`Client.belongsToThisProcess`).
    ///
    /// The current loop is found through an atomic pointer, not a lock: a lock here could
    /// be held by another thread of the parent when it forks, and the child's first
    /// client would wait for it forever.
    static var shared: NetworkLoop {
        let pid = getpid()
        while true {
            let bits = current.load(ordering: .acquiring)
            let existing = UnsafeRawPointer(bitPattern: bits).map {
                Unmanaged<NetworkLoop>.fromOpaque($0).takeUnretainedValue()
            }
            if let existing, existing.processID == pid { return existing }
            // Retained for the life of the process: the published loop is never released.
            let fresh = NetworkLoop()
            let freshBits = UInt(bitPattern: Unmanaged.passRetained(fresh).toOpaque())
            if current.compareExchange(expected: bits, desired: freshBits, ordering: .acquiringAndReleasing).exchanged {
                existing?.abandonInheritedDescriptors()
                return fresh
            }
            // Another thread of this process published its loop first: use that one.
            fresh.discard()
            Unmanaged.passUnretained(fresh).release()
        }
    }

    /// The loop of this process (an `Unmanaged` pointer's bits; 0 before the first).
    private static let current = Atomic<UInt>(0)

    /// The process that made this loop: only there do its thread and objects exist.
    let processID: pid_t

    private let commands = Locked<[Command]>([])
    let epollFD: Int32
    private let wakeFD: Int32
    let multi: UnsafeMutableRawPointer?
    /// Whether the loop's thread runs (started on first use, never stopped).
    private let started = Locked(false)
    /// The loop thread's pthread_t, once it runs.
    private let loopThread = Atomic<UInt>(0)

    // Loop thread only.
    var connectionsByFD: [Int32: Connection] = [:]
    var connectionsByEasy: [UnsafeMutableRawPointer: Connection] = [:]
    var curlFDs: Set<Int32> = []
    /// Device audio mode: each engine's eventfd, readable when it has microphone frames,
    /// drained its playout, or failed.
    private var audioConversationsByFD: [Int32: Conversation] = [:]
    /// Microphone frames on their way from an engine to its session (one for all).
    private var captureBuffer = [Int16](repeating: 0, count: 16_000)
    var curlDeadline: UInt64?
    let shares = CurlSharePool()
    /// Entries name their conversation by identity, resolved through
    /// `timedConversations`: a stale entry (lazy deletion) must not keep a destroyed
    /// client's conversation (and its buffers) alive until its deadline, which can be a
    /// ready timeout or a reconnection delay away (with strong entries a process that
    /// churns calls held every client of the last ready timeout, 10 s, in memory: 3 MB
    /// at 150 calls a second). Not weak references either: one gives the object a side
    /// table, and then every retain and release of it, several per audio frame, takes
    /// the runtime's slow path.
    private var timers = TimerHeap<ObjectIdentifier>()
    /// The conversations that may have timers, until destroyed. An identity that
    /// outlives its conversation and comes back with a new one at the same address only
    /// costs that one a spurious tick, which finds nothing due (`scheduledDeadline`
    /// usually filters it).
    private var timedConversations: [ObjectIdentifier: Conversation] = [:]
    var readBuffer = [UInt8](repeating: 0, count: 65536)
    /// Masking keys and nonces for every connection (one pool, not one each).
    let random = RandomSource()

    private init() {
        processID = getpid()
        // In a forked child curl is initialised already (the parent's state is copied);
        // the call then only counts one more user.
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        epollFD = csys_epoll_create()
        wakeFD = csys_eventfd()
        multi = curl_multi_init()
        if epollFD >= 0 && wakeFD >= 0 {
            csys_epoll_ctl(epollFD, Self.add, wakeFD, Self.readable)
        }
        if let multi {
            let me = Unmanaged.passUnretained(self).toOpaque()
            ccurl_multi_set_callbacks(multi, NetworkLoop.curlSocketCallback, NetworkLoop.curlTimerCallback, me)
        }
    }

    /// Frees a loop that lost the race to be published (no thread, no handles in it).
    private func discard() {
        if let multi { curl_multi_cleanup(multi) }
        if epollFD >= 0 { close(epollFD) }
        if wakeFD >= 0 { close(wakeFD) }
    }

    /// In a forked child, the parent's loop: closes the child's copies of its epoll and
    /// eventfd descriptors, which only ends the child's reference (the parent keeps its
    /// own); everything else is left alone (see `shared`).
    private func abandonInheritedDescriptors() {
        if epollFD >= 0 { close(epollFD) }
        if wakeFD >= 0 { close(wakeFD) }
    }

    /// The caller is the loop thread (inside a callback).
    var isLoopThread: Bool {
        loopThread.load(ordering: .acquiring) == UInt(pthread_self())
    }

    /// Whether the loop could get its kernel objects (epoll, eventfd, curl multi).
    var isUsable: Bool { epollFD >= 0 && wakeFD >= 0 && multi != nil }

    /// Queues a command and wakes the loop, starting its thread on first use.
    func post(_ command: Command) {
        startThreadIfNeeded()
        let wasEmpty = commands.withLock { queue -> Bool in
            queue.append(command)
            return queue.count == 1
        }
        if wasEmpty {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    private func startThreadIfNeeded() {
        started.withLock { started in
            if started { return }
            var thread = pthread_t()
            let me = Unmanaged.passRetained(self).toOpaque()
            let rc = pthread_create(&thread, nil, { arg in
                let loop = Unmanaged<NetworkLoop>.fromOpaque(arg!).takeRetainedValue()
                loop.run()
                return nil
            }, me)
            if rc == 0 {
                pthread_detach(thread)
                started = true
            } else {
                Unmanaged<NetworkLoop>.fromOpaque(me).release()
            }
        }
    }

    static let add: Int32 = 0, modify: Int32 = 1, delete: Int32 = 2
    static let readable = UInt32(CSYS_EPOLLIN), writable = UInt32(CSYS_EPOLLOUT)
    static let failed = UInt32(CSYS_EPOLLERR | CSYS_EPOLLHUP)

    // MARK: The loop

    private func run() {
        // Named for top -H, perf and gdb: one thread serves every client of the process.
        csys_name_thread("millis-net")
        loopThread.store(UInt(pthread_self()), ordering: .releasing)
        var readyFDs = [Int32](repeating: 0, count: 256)
        var readyEvents = [UInt32](repeating: 0, count: 256)
        var audioReady = [Int32]()
        audioReady.reserveCapacity(256)
        while true {
            let timeout = waitTimeout()
            let n = csys_epoll_wait(epollFD, &readyFDs, &readyEvents, 256, timeout)
            if n < 0 && errno != EINTR { usleep(1000) }
            for i in 0..<max(0, Int(n)) {
                let fd = readyFDs[i]
                let flags = readyEvents[i]
                if fd == wakeFD {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                } else if let connection = connectionsByFD[fd] {
                    handleIO(connection, flags: flags)
                } else if audioConversationsByFD[fd] != nil {
                    audioReady.append(fd)
                } else if curlFDs.contains(fd) {
                    var mask: Int32 = 0
                    if flags & Self.readable != 0 { mask |= CURL_CSELECT_IN }
                    if flags & Self.writable != 0 { mask |= CURL_CSELECT_OUT }
                    if flags & Self.failed != 0 { mask |= CURL_CSELECT_ERR }
                    curlAction(fd, mask)
                }
            }
            // Audio after the sockets: a speaker that ran dry while the loop was held up
            // (a slow callback) announces a drain, and the answer's audio that arrived
            // meanwhile must reach the playout queue first, so the drain is seen as the
            // gap it was (PlayoutDrain), not as the end of the answer.
            for fd in audioReady {
                audioConversationsByFD[fd]?.serviceAudio(captureBuffer: &captureBuffer)
            }
            audioReady.removeAll(keepingCapacity: true)
            runCommands()
            runTimers()
        }
    }

    private func waitTimeout() -> Int32 {
        let now = MonotonicClock.now()
        var deadline = timers.earliest
        if let curlDeadline { deadline = min(deadline ?? curlDeadline, curlDeadline) }
        guard let deadline else { return -1 }
        if deadline <= now { return 0 }
        // Round up so that a wake-up is never early.
        return Int32(min((deadline - now + 999_999) / 1_000_000, 60_000))
    }

    private func runCommands() {
        let batch = commands.withLock { queue -> [Command] in
            let taken = queue
            queue.removeAll(keepingCapacity: true)
            return taken
        }
        let now = MonotonicClock.now()
        for command in batch {
            switch command {
            case .start(let conversation, let request):
                conversation.start(request.options, engine: request.engine, recorder: request.recorder, now: now)
            case .recording(let conversation, let recorder, let attaching):
                conversation.recording(recorder, attach: attaching, now: now)
            case .stop(let conversation):
                conversation.stop(now: now)
            case .audio(let conversation, let pcm):
                conversation.userAudio(pcm, now: now)
            case .json(let conversation, let text):
                conversation.sendJSON(text)
            case .mute(let conversation, let muted):
                conversation.setMuted(muted)
            case .destroy(let conversation, let completion):
                conversation.destroy()
                timedConversations[ObjectIdentifier(conversation)] = nil
                if completion >= 0 { AudioEngine.signal(completion) }
            }
        }
    }

    private func runTimers() {
        let now = MonotonicClock.now()
        if let deadline = curlDeadline, deadline <= now {
            curlDeadline = nil
            curlAction(CURL_SOCKET_TIMEOUT, 0)
        }
        while let (deadline, id) = timers.popDue(now: now) {
            guard let conversation = timedConversations[id], conversation.scheduledDeadline == deadline else { continue }
            conversation.deadlineReached(now: now)
        }
    }

    /// Wakes `conversation` at `deadline` (its `scheduledDeadline`).
    func schedule(_ deadline: UInt64, for conversation: Conversation) {
        timers.push(deadline, ObjectIdentifier(conversation))
        timedConversations[ObjectIdentifier(conversation)] = conversation
    }

    // MARK: Device audio

    /// The engine's eventfd wakes the loop for `conversation` (`serviceAudio`).
    func watchAudio(_ fd: Int32, for conversation: Conversation) {
        audioConversationsByFD[fd] = conversation
        csys_epoll_ctl(epollFD, Self.add, fd, Self.readable)
    }

    func unwatchAudio(_ fd: Int32) {
        csys_epoll_ctl(epollFD, Self.delete, fd, 0)
        audioConversationsByFD[fd] = nil
    }
}
