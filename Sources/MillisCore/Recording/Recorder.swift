#if canImport(Glibc)
import Glibc
#endif
import CSystem
import Synchronization

/// One recording: both sides' audio into an audio file and the timeline into a JSON
/// Lines file beside it, written by a thread of its own.
///
/// Producers (the network loop, the playback thread) only append to lock-free rings
/// (`user`, `agent`, the engine's tap) and the timeline's line queue; the writer thread
/// places each chunk on the recording's clock by its time, fills gaps with silence,
/// interleaves the two sides, encodes and writes. A chunk that arrives faster than real
/// time (an answer sent in a burst, a file read fast) follows the previous one
/// directly, so nothing is overwritten or lost.
final class Recorder: @unchecked Sendable {
    let audioPath: String
    let timelinePath: String
    let mono: Bool
    let format: AudioFileFormat
    /// Sample 0 of the audio, and t = 0 of the timeline (monotonic ns).
    let startedAt: UInt64
    /// The user's audio as sent (network loop).
    let user = TimedSampleRing(seconds: 10)
    /// The agent's audio as received, in application mode (network loop).
    let agent = TimedSampleRing(seconds: 30)
    /// The agent's audio as played, in device mode (the playback thread's tap).
    private let playedAgent = Locked<TimedSampleRing?>(nil)
    private let lines = Locked<[String]>([])
    private let finishing = Atomic<Bool>(false)
    private let wakeFD: Int32
    private let joinLock = Locked<(thread: pthread_t?, failure: MillisError?)>((nil, nil))

    // Writer thread only.
    private var audio: AudioFileWriter
    private var timeline: UnsafeMutablePointer<FILE>?
    private var userTrack = Track()
    private var agentTrack = Track()
    private var emitted = 0
    private var failure: MillisError?

    /// Late audio is waited for this long (1 s) before its place is filled with silence.
    static let latenessSamples = 16_000
    /// A chunk up to this late (0.5 s) simply follows the previous one: a stream is
    /// contiguous, and a sender's jitter or hiccup (an application thread that
    /// stalled, a clock a little slow) is not a pause in what the other side heard.
    static let jitterSamples = 8_000

    /// Creates both files and starts the writer thread.
    init(path: String, mono: Bool, title: String) throws(MillisError) {
        format = try AudioFileFormat(path: path, what: "recording")
        audioPath = path
        timelinePath = Self.timelinePath(for: path)
        self.mono = mono
        guard let file = fopen(timelinePath, "w") else {
            throw MillisError(.file, "could not create the recording's timeline '\(timelinePath)': \(AudioFileFormat.errnoMessage())")
        }
        do {
            audio = try format.writer(path: path, channels: mono ? 1 : 2, sampleRate: 16_000, title: title)
        } catch {
            fclose(file)
            unlink(timelinePath)
            throw error
        }
        timeline = file
        wakeFD = csys_eventfd()
        startedAt = MonotonicClock.now()
        var thread = pthread_t()
        let me = Unmanaged.passRetained(self).toOpaque()
        if pthread_create(&thread, nil, { arg in
            let recorder = Unmanaged<Recorder>.fromOpaque(arg!).takeRetainedValue()
            recorder.run()
            return nil
        }, me) == 0 {
            joinLock.withLock { $0.thread = thread }
        } else {
            Unmanaged<Recorder>.fromOpaque(me).release()
            try? audio.finish()
            fclose(file)
            timeline = nil
            if wakeFD >= 0 { Glibc.close(wakeFD) }
            throw MillisError(.internal, "could not start the recording thread: \(AudioFileFormat.errnoMessage())")
        }
    }

    deinit {
        if wakeFD >= 0 { Glibc.close(wakeFD) }
    }

    /// "call.opus" → "call.jsonl".
    static func timelinePath(for path: String) -> String {
        let slash = path.lastIndex(of: "/")
        if let dot = path.lastIndex(of: "."), slash.map({ dot > $0 }) ?? true {
            return String(path[..<dot]) + ".jsonl"
        }
        return path + ".jsonl"
    }

    /// Seconds on the recording's clock, as timeline text.
    func time(_ t: UInt64) -> String {
        Seconds.format(Int64(bitPattern: t &- startedAt))
    }

    /// Appends a timeline line (a JSON object's text, without the newline).
    func line(_ text: String) {
        lines.withLock { $0.append(text) }
    }

    /// Device mode: the playback thread's tap, the agent's audio as played.
    func attachPlayedAgent(_ ring: TimedSampleRing?) {
        playedAgent.withLock { $0 = ring }
    }

    var isFinishing: Bool { finishing.load(ordering: .acquiring) }

    /// Asks the writer to complete the files; returns at once.
    func finish() {
        finishing.store(true, ordering: .releasing)
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Completes the files and waits until they are; the writer's failure, if any.
    /// Any thread, any number of times.
    @discardableResult
    func finishAndWait() -> MillisError? {
        finish()
        return joinLock.withLock { state in
            if let thread = state.thread {
                pthread_join(thread, nil)
                state.thread = nil
                state.failure = failure
            }
            return state.failure
        }
    }

    // MARK: Writer thread

    private struct Track {
        var pending: [Int16] = []
        /// The recording's sample index of pending[0].
        var base = 0
        var cursor: Int { base + pending.count }
        var samples = 0

        mutating func place(_ chunk: UnsafeBufferPointer<Int16>, at index: Int) {
            // The tolerance is for a stream under way: a side's first chunk (or the
            // first after a gap filled with silence) goes exactly where it belongs.
            if index > cursor + (samples > 0 ? Recorder.jitterSamples : 0) {
                pending.append(contentsOf: repeatElement(0, count: index - cursor))
            }
            pending.append(contentsOf: chunk)
            samples += chunk.count
        }

        mutating func pad(to index: Int) {
            if cursor < index { pending.append(contentsOf: repeatElement(0, count: index - cursor)) }
        }
    }

    private func run() {
        csys_name_thread("millis-record")
        var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        var interleaved: [Int16] = []
        while true {
            let last = finishing.load(ordering: .acquiring)
            if !last {
                _ = poll(&fds, 1, 50)
                var value: UInt64 = 0
                _ = read(wakeFD, &value, 8)
            }
            collect()
            writeLines()
            let now = Int((MonotonicClock.now() &- startedAt) / 62_500)
            let horizon = last ? max(userTrack.cursor, agentTrack.cursor) : now - Self.latenessSamples
            userTrack.pad(to: horizon)
            agentTrack.pad(to: horizon)
            emit(upTo: min(userTrack.cursor, agentTrack.cursor), into: &interleaved)
            if last { break }
        }
        let dropped = user.dropped.load(ordering: .relaxed) + agent.dropped.load(ordering: .relaxed)
            + (playedAgent.withLock { $0 }?.dropped.load(ordering: .relaxed) ?? 0)
        var end = ""
        JSONWriter.write(.object([
            ("t", .number(time(MonotonicClock.now()))), ("type", .string("end")),
            ("duration", .number(Seconds.format(Int64(emitted) * 62_500))),
            ("user_samples", .number("\(userTrack.samples)")), ("agent_samples", .number("\(agentTrack.samples)")),
            ("dropped_samples", .number("\(dropped)")),
        ]), to: &end)
        line(end)
        writeLines()
        do { try audio.finish() } catch { if failure == nil { failure = error } }
        if let timeline, fclose(timeline) != 0, failure == nil {
            failure = MillisError(.file, "could not complete '\(timelinePath)': \(AudioFileFormat.errnoMessage())")
        }
        timeline = nil
    }

    private func collect() {
        user.drain { chunk, t in userTrack.place(chunk, at: index(of: t)) }
        agent.drain { chunk, t in agentTrack.place(chunk, at: index(of: t)) }
        if let played = playedAgent.withLock({ $0 }) {
            played.drain { chunk, t in agentTrack.place(chunk, at: index(of: t)) }
        }
    }

    private func index(of time: UInt64) -> Int {
        time > startedAt ? Int((time - startedAt) / 62_500) : 0
    }

    private func writeLines() {
        let batch = lines.withLock { queue -> [String] in
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
        guard let timeline, !batch.isEmpty else { return }
        for text in batch {
            fputs(text, timeline)
            fputc(10, timeline)
        }
        if fflush(timeline) != 0, failure == nil {
            failure = MillisError(.file, "could not write to '\(timelinePath)': \(AudioFileFormat.errnoMessage())")
        }
    }

    private func emit(upTo index: Int, into out: inout [Int16]) {
        let count = index - emitted
        guard count > 0 else { return }
        out.removeAll(keepingCapacity: true)
        if mono {
            for i in 0..<count {
                out.append(Int16(clamping: Int(userTrack.pending[i]) + Int(agentTrack.pending[i])))
            }
        } else {
            for i in 0..<count {
                out.append(userTrack.pending[i])
                out.append(agentTrack.pending[i])
            }
        }
        userTrack.pending.removeFirst(count)
        agentTrack.pending.removeFirst(count)
        userTrack.base += count
        agentTrack.base += count
        emitted = index
        guard failure == nil else { return }
        do {
            try out.withUnsafeBufferPointer { try audio.write($0) }
        } catch {
            failure = error as? MillisError ?? MillisError(.file, "could not write to '\(audioPath)': \(error)")
        }
    }
}
