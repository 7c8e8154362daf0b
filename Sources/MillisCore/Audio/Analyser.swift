#if canImport(Glibc)
import Glibc
#endif

/// The Web Audio `AnalyserNode` over a stream of mono samples, computed exactly as the
/// specification defines it (https://webaudio.github.io/web-audio-api/#AnalyserNode,
/// "FFT windowing and smoothing over time"), so that a UI written against the browser's
/// analyser draws the same picture from this one.
///
/// Thread-safe: audio threads write, any thread reads. Writing takes no lock and never
/// waits, whatever readers do (see `History`); readers copy the samples they need and
/// compute under a lock of their own, which serializes them among themselves only. Feed
/// an analyser from one thread at a time: a write that overlaps another one is dropped.
///
/// Unlike the browser, which computes at most one frame per render quantum, every call to
/// `getFloatFrequencyData` or `getByteFrequencyData` computes a fresh frame and advances
/// the smoothing once: there is no render clock here to tie frames to. Calling both back
/// to back therefore smooths twice; call one of them per displayed frame.
public final class Analyser: @unchecked Sendable {
    /// The history kept whatever `fftSize` is, so that enlarging `fftSize` shows audio
    /// that really came in instead of zeros. Equal to the largest `fftSize`.
    static let historyCapacity = 32_768
    static let fftSizeRange = 32...32_768
    /// rmsDBFS of silence: a finite floor, because -inf does not survive JSON or most
    /// meters' arithmetic.
    static let silenceDBFS = -120.0

    public let sampleRate: Double
    private let history = History()
    private let readers: Locked<ReaderState>

    public init(sampleRate: Double = 16_000) {
        self.sampleRate = sampleRate
        readers = Locked(ReaderState(frame: Frame(size: 2048)))
    }

    // MARK: Writing (real-time audio threads)

    /// Appends mono PCM16 samples to the time-domain history.
    public func write(_ samples: UnsafeBufferPointer<Int16>) {
        history.append(samples) { Float($0) * (1 / 32_768) }
    }

    public func write(_ samples: [Int16]) {
        samples.withUnsafeBufferPointer { write($0) }
    }

    /// Appends mono float samples, already in [-1, 1]. They are not clamped (the
    /// specification does not clamp either), but a NaN or infinity becomes 0: one of them
    /// would otherwise poison every frequency frame and the RMS for the next 32768 samples.
    public func write(floats samples: UnsafeBufferPointer<Float>) {
        history.append(samples) { $0.isFinite ? $0 : 0 }
    }

    /// Writes dropped because they overlapped another write on another thread.
    var droppedWrites: Int { history.collisions.load(ordering: .relaxed) }

    // MARK: Parameters

    public var fftSize: Int { readers.withLock { $0.frame.size } }

    public func setFFTSize(_ n: Int) throws(MillisError) {
        guard Self.fftSizeRange.contains(n), n & (n - 1) == 0 else {
            throw MillisError(.invalidArgument, "fftSize \(n) is not allowed: use a power of two from 32 to 32768 (32, 64, 128, …, 32768)")
        }
        guard fftSize != n else { return }
        // Allocated before taking the lock and freed after releasing it, so that other
        // readers wait only for the swap, not for malloc or the twiddles.
        var replacement = Frame(size: n)
        readers.withLock { s in
            // Another thread may have set this size meanwhile: keep its smoothing.
            guard s.frame.size != n else { return }
            swap(&s.frame, &replacement)
        }
    }

    public var frequencyBinCount: Int { fftSize / 2 }

    public var minDecibels: Double { readers.withLock { $0.minDecibels } }
    public var maxDecibels: Double { readers.withLock { $0.maxDecibels } }

    /// Sets both ends together: setting them one at a time, as the browser does, makes a
    /// move to a range that does not overlap the current one fail half-way.
    public func setDecibelRange(min: Double, max: Double) throws(MillisError) {
        guard min.isFinite, max.isFinite else {
            throw MillisError(.invalidArgument, "decibel range [\(min), \(max)] is not allowed: both ends must be finite numbers of dB (default -100 and -30)")
        }
        guard min < max else {
            throw MillisError(.invalidArgument, "decibel range [\(min), \(max)] is not allowed: min must be less than max (default -100 and -30)")
        }
        readers.withLock { s in
            s.minDecibels = min
            s.maxDecibels = max
        }
    }

    public var smoothingTimeConstant: Double { readers.withLock { $0.smoothing } }

    public func setSmoothingTimeConstant(_ s: Double) throws(MillisError) {
        guard s.isFinite, (0...1).contains(s) else {
            throw MillisError(.invalidArgument, "smoothingTimeConstant \(s) is not allowed: use a number from 0 (no smoothing) to 1 (frozen); the default is 0.8")
        }
        readers.withLock { $0.smoothing = s }
    }

    // MARK: Reading

    /// Writes 20·log10 of the smoothed magnitudes, -infinity for a zero magnitude as the
    /// specification says; returns min(out.count, frequencyBinCount).
    public func getFloatFrequencyData(_ out: UnsafeMutableBufferPointer<Float>) -> Int {
        readers.withLock { s in
            s.computeFrequencyFrame(history)
            return s.frame.smoothed.withUnsafeBufferPointer { smoothed in
                let count = min(out.count, smoothed.count)
                for k in 0..<count { out[k] = Float(20 * log10(smoothed[k])) }
                return count
            }
        }
    }

    /// Writes the smoothed dB values mapped linearly from [minDecibels, maxDecibels] onto
    /// 0…255 and clamped; returns min(out.count, frequencyBinCount).
    public func getByteFrequencyData(_ out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        readers.withLock { s in
            s.computeFrequencyFrame(history)
            let low = s.minDecibels
            let scale = 255 / (s.maxDecibels - s.minDecibels)
            return s.frame.smoothed.withUnsafeBufferPointer { smoothed in
                let count = min(out.count, smoothed.count)
                for k in 0..<count {
                    // log10(0) is -inf and must map to 0; clamping in Double first keeps
                    // the conversion to UInt8 in range whatever the dB value.
                    let db = 20 * log10(smoothed[k])
                    let b = db.isFinite ? (scale * (db - low)).rounded(.down) : 0
                    out[k] = UInt8(Swift.min(255, Swift.max(0, b)))
                }
                return count
            }
        }
    }

    /// Writes the most recent fftSize samples, oldest first (0 for samples never written);
    /// returns min(out.count, fftSize), dropping the newest when `out` is shorter.
    public func getFloatTimeDomainData(_ out: UnsafeMutableBufferPointer<Float>) -> Int {
        readers.withLock { s in
            let count = min(out.count, s.frame.size)
            s.forEachRecent(history) { i, x in
                if i < count { out[i] = x }
            }
            return count
        }
    }

    /// Writes floor(128·(1 + x)) clamped to 0…255 for the most recent fftSize samples;
    /// returns min(out.count, fftSize).
    public func getByteTimeDomainData(_ out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        readers.withLock { s in
            let count = min(out.count, s.frame.size)
            s.forEachRecent(history) { i, x in
                if i < count {
                    let b = (128 * (1 + Double(x))).rounded(.down)
                    out[i] = UInt8(Swift.min(255, Swift.max(0, b)))
                }
            }
            return count
        }
    }

    /// RMS of the most recent fftSize samples in dBFS, where a full-scale sine is -3.01;
    /// never below -120 (silence), so callers never see -inf.
    public var rmsDBFS: Double {
        readers.withLock { s in
            var sumOfSquares = 0.0
            s.forEachRecent(history) { _, x in sumOfSquares += Double(x) * Double(x) }
            let meanSquare = sumOfSquares / Double(s.frame.size)
            guard meanSquare > 0 else { return Self.silenceDBFS }
            return Swift.max(Self.silenceDBFS, 10 * log10(meanSquare))
        }
    }

    /// Forgets the history and the smoothing, as for a new conversation. The parameters
    /// (fftSize, decibel range, smoothing constant) stay as set.
    public func reset() {
        readers.withLock { s in
            // The history belongs to the writer: readers stop looking behind this point
            // instead of clearing it.
            s.resetAt = history.count
            s.frame.smoothed.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        }
    }

    // MARK: Testing

    /// Run by readers between copying the samples and checking the copy, with the
    /// readers' lock held: tests hold a reader there, or write meanwhile to overtake it.
    var duringSnapshot: (() -> Void)? {
        get { readers.withLock { $0.duringSnapshot } }
        set { readers.withLock { $0.duringSnapshot = newValue } }
    }

    /// Copies a reader had to make again because a writer overtook them.
    var snapshotRetries: Int { readers.withLock { $0.retries } }
}

extension Analyser {
    /// Everything that depends on fftSize, allocated together so that a size change is one
    /// allocation outside the lock and one swap inside it, and reads never allocate.
    struct Frame {
        let size: Int
        let fft: FFT
        let window: [Double]
        /// The newest `size` samples, copied out of the history before any arithmetic so
        /// that the FFT and the getters work on samples no writer can change.
        var samples: [Float]
        var real: [Double]
        var imag: [Double]
        /// X̂prev of the specification: zeros on creation, which is its reset on a size change.
        var smoothed: [Double]

        init(size: Int) {
            self.size = size
            fft = FFT(size: size)
            // Blackman with alpha 0.16, periodic (divided by N, not N - 1), as the spec says.
            let alpha = 0.16
            let a0 = (1 - alpha) / 2, a1 = 0.5, a2 = alpha / 2
            var w = [Double](repeating: 0, count: size)
            for n in 0..<size {
                let x = 2 * Double.pi * Double(n) / Double(size)
                w[n] = a0 - a1 * cos(x) + a2 * cos(2 * x)
            }
            window = w
            samples = [Float](repeating: 0, count: size)
            real = [Double](repeating: 0, count: size)
            imag = [Double](repeating: 0, count: size)
            smoothed = [Double](repeating: 0, count: size / 2)
        }
    }

    /// What readers share, behind their own lock; the writer never takes it.
    struct ReaderState {
        var frame: Frame
        var minDecibels = -100.0
        var maxDecibels = -30.0
        var smoothing = 0.8
        /// Samples before this position read as 0: where `reset` forgot the history.
        var resetAt = 0
        var retries = 0
        var duringSnapshot: (() -> Void)?

        init(frame: Frame) {
            self.frame = frame
        }

        /// Fills `frame.samples` with a consistent copy of the newest samples.
        mutating func snapshot(_ history: History) {
            let resetAt = resetAt
            let hook = duringSnapshot
            while !frame.samples.withUnsafeMutableBufferPointer({
                history.copyNewest(into: $0, floor: resetAt, duringCopy: hook)
            }) {
                retries += 1
            }
        }

        /// Calls body(i, x) for the most recent fftSize samples, oldest first (i = 0).
        mutating func forEachRecent(_ history: History, _ body: (Int, Float) -> Void) {
            snapshot(history)
            frame.samples.withUnsafeBufferPointer { recent in
                for i in 0..<recent.count { body(i, recent[i]) }
            }
        }

        /// Windows the time-domain block, transforms it and folds |X[k]|/N into the
        /// smoothed magnitudes once.
        mutating func computeFrequencyFrame(_ history: History) {
            snapshot(history)
            let size = frame.size
            let tau = smoothing
            let scale = 1 / Double(size)
            let fft = frame.fft
            frame.samples.withUnsafeBufferPointer { recent in
                frame.window.withUnsafeBufferPointer { window in
                    frame.real.withUnsafeMutableBufferPointer { re in
                        frame.imag.withUnsafeMutableBufferPointer { im in
                            for n in 0..<size {
                                re[n] = Double(recent[n]) * window[n]
                                im[n] = 0
                            }
                            fft.transform(real: re, imag: im)
                            frame.smoothed.withUnsafeMutableBufferPointer { smoothed in
                                for k in 0..<(size / 2) {
                                    let magnitude = (re[k] * re[k] + im[k] * im[k]).squareRoot() * scale
                                    let value = tau * smoothed[k] + (1 - tau) * magnitude
                                    smoothed[k] = value.isFinite ? value : 0
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
