#if canImport(Glibc)
import Glibc
#endif
import CSystem
import Synchronization

/// An audio file standing in for a device, at 16 kHz mono PCM16, with a device's
/// timing: a timerfd is its clock.
///
/// As a microphone it streams the decoded file in real time (or, with `fast`, as fast
/// as it is read), then silence in real time; `ended` is set when the file has run out.
/// As a speaker it holds what is written in a device-like buffer and commits it to the
/// file as the clock "plays" it: `clear` drops what has not been played yet, and a gap
/// (a late writer) is played as silence, so the file keeps the conversation's timing.
final class FilePCM: PCMStream {
    enum Role {
        case input(samples: [Int16], fast: Bool)
        case output(AudioFileWriter)
    }

    let path: String
    let rate = 16_000
    let channels = 1
    let format = SampleFormat.s16
    let periodFrames: Int
    let bufferFrames: Int
    /// The input file has been read to its end (silence follows).
    let ended = Atomic<Bool>(false)

    private let role: Role
    private var clockFD: Int32 = -1
    // The clock: frames "played" (or "captured") since the anchor.
    private var anchorTime: UInt64 = 0
    private var anchorFrames = 0
    private var running = false
    // Input: read position. Output: frames committed to the file, and those written
    // but not yet played.
    private var position = 0
    private var fastUntilEnd: Bool
    private var pending: [Int16] = []
    private var failure: MillisError?

    /// An input file, decoded now (a missing or undecodable file is the caller's error).
    init(inputPath: String, fast: Bool, periodMilliseconds: Int) throws(MillisError) {
        path = inputPath
        role = .input(samples: try AudioFileReader.read(path: inputPath), fast: fast)
        fastUntilEnd = fast
        periodFrames = 16 * periodMilliseconds
        bufferFrames = 8 * periodFrames
        try openClock(periodMilliseconds)
    }

    /// An output file, created now.
    init(outputPath: String, periodMilliseconds: Int) throws(MillisError) {
        path = outputPath
        let format = try AudioFileFormat(path: outputPath, what: "audio output file")
        role = .output(try format.writer(path: outputPath, channels: 1, sampleRate: 16_000, title: "agent audio"))
        fastUntilEnd = false
        periodFrames = 16 * periodMilliseconds
        bufferFrames = 3 * periodFrames
        pending.reserveCapacity(bufferFrames)
        try openClock(periodMilliseconds)
    }

    private func openClock(_ periodMilliseconds: Int) throws(MillisError) {
        clockFD = csys_timerfd_periodic(UInt64(periodMilliseconds) * 1_000_000)
        guard clockFD >= 0 else {
            throw MillisError(.internal, "could not create a timerfd for '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    deinit { close() }

    var label: String {
        if case .input = role { return "audio input file '\(path)'" }
        return "audio output file '\(path)'"
    }

    var description: [(key: String, value: JSONValue)] {
        [("device", .string("file")), ("file", .string(path)), ("rate", .number("\(rate)")),
         ("channels", .number("1")), ("format", .string(format.alsaName)),
         ("period_frames", .number("\(periodFrames)")), ("buffer_frames", .number("\(bufferFrames)"))]
    }

    /// The input file's length in 16 kHz samples (0 for an output).
    var inputFrames: Int {
        if case .input(let samples, _) = role { return samples.count }
        return 0
    }

    func start() {
        running = true
        anchor(at: MonotonicClock.now(), frames: position)
    }

    private func anchor(at time: UInt64, frames: Int) {
        anchorTime = time
        anchorFrames = frames
    }

    /// Frames the clock has played or captured by now.
    private func clockFrames(_ now: UInt64) -> Int {
        anchorFrames + Int((now &- anchorTime) / 62_500)
    }

    private func drainClock() {
        var expirations: UInt64 = 0
        _ = Glibc.read(clockFD, &expirations, 8)
    }

    func available() -> Int {
        drainClock()
        if !running { start() }
        let now = MonotonicClock.now()
        switch role {
        case .input:
            if fastUntilEnd { return bufferFrames }
            return max(0, clockFrames(now) - position)
        case .output:
            commitPlayed(now)
            return bufferFrames - pending.count
        }
    }

    func read(into buffer: UnsafeMutableRawPointer, frames: Int) -> Int {
        guard case .input(let samples, _) = role else { return -Int(EBADF) }
        let due = available()
        guard due > 0 else { return -Int(EAGAIN) }
        let n = min(frames, due)
        let out = buffer.bindMemory(to: Int16.self, capacity: n)
        let fromFile = max(0, min(n, samples.count - position))
        samples.withUnsafeBufferPointer { s in
            if fromFile > 0 { out.update(from: s.baseAddress! + position, count: fromFile) }
        }
        (out + fromFile).update(repeating: 0, count: n - fromFile)
        position += n
        if position >= samples.count && !ended.load(ordering: .relaxed) {
            ended.store(true, ordering: .releasing)
            if fastUntilEnd {
                // Silence after the file comes in real time, from here on.
                fastUntilEnd = false
                anchor(at: MonotonicClock.now(), frames: position)
            }
        }
        return n
    }

    func write(_ buffer: UnsafeRawPointer, frames: Int) -> Int {
        guard case .output = role else { return -Int(EBADF) }
        if failure != nil { return -Int(EIO) }
        let room = available()
        guard room > 0 else { return -Int(EAGAIN) }
        let n = min(frames, room)
        pending.append(contentsOf: UnsafeBufferPointer(start: buffer.bindMemory(to: Int16.self, capacity: n), count: n))
        return failure == nil ? n : -Int(EIO)
    }

    /// Moves what the clock has played from `pending` to the file; a writer that fell
    /// behind leaves a gap, which plays (and is written) as silence.
    private func commitPlayed(_ now: UInt64) {
        // Before the first write the clock has not started: nothing has played.
        guard running, case .output(let writer) = role, failure == nil else { return }
        let played = clockFrames(now) - position
        guard played > 0 else { return }
        let fromPending = min(played, pending.count)
        do {
            try pending.withUnsafeBufferPointer { try writer.write(UnsafeBufferPointer(rebasing: $0[0..<fromPending])) }
            if played > fromPending {
                let gap = [Int16](repeating: 0, count: played - fromPending)
                try gap.withUnsafeBufferPointer { try writer.write($0) }
            }
        } catch {
            failure = error as? MillisError ?? MillisError(.file, "could not write to '\(path)': \(error)")
            return
        }
        pending.removeFirst(fromPending)
        position += played
    }

    func delay() -> Int? {
        guard running else { return 0 }
        switch role {
        case .input: return fastUntilEnd ? 0 : max(0, clockFrames(MonotonicClock.now()) - position)
        case .output: return pending.count
        }
    }

    func recover(_ error: Int) -> Bool { failure == nil }

    func dropAndPrepare(silenced: () -> Void) {
        if case .output = role {
            commitPlayed(MonotonicClock.now())
            pending.removeAll(keepingCapacity: true)
        }
        silenced()
    }

    func pollDescriptors() -> [pollfd] {
        clockFD >= 0 ? [pollfd(fd: clockFD, events: Int16(POLLIN), revents: 0)] : []
    }

    /// The timer is read where the frames are counted (`available`).
    func acknowledgePoll(_ fds: UnsafeMutableBufferPointer<pollfd>) {}

    /// Closes the clock; an output file gets what it still holds (as if played out)
    /// and is completed.
    func close() {
        if case .output(let writer) = role {
            if failure == nil && !pending.isEmpty {
                do { try pending.withUnsafeBufferPointer { try writer.write($0) } } catch { failure = error as? MillisError ?? MillisError(.file, "could not write to '\(path)': \(error)") }
            }
            pending.removeAll()
            do { try writer.finish() } catch { if failure == nil { failure = error } }
        }
        if clockFD >= 0 { Glibc.close(clockFD) }
        clockFD = -1
    }

    /// Why the output file failed, if it did.
    var outputFailure: MillisError? { failure }
}
