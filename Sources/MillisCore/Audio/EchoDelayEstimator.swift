/// Finds where the echo really sits relative to the echo canceller's reference, from
/// the signals themselves: the cross-correlation of the microphone with the reference
/// over the last half second. Device delay reports only get the alignment to within
/// 10 to 20 ms, and a device restart (every barge-in drops the buffer) moves the real
/// latency by a few ms more; each such shift would make the adaptive filter start its
/// convergence over (seconds, during which the agent hears itself). Correcting the
/// reference instead keeps the echo at the same tap, where the filter has converged.
///
/// Runs on the capture thread; costs three 8192-point FFTs every 100 ms (while
/// searching) or 250 ms (while tracking) of speaker activity.
final class EchoDelayEstimator {
    static let window = 4096
    private let fft = FFT(size: 2 * EchoDelayEstimator.window)
    private var mic = [Double](repeating: 0, count: EchoDelayEstimator.window)
    private var ref = [Double](repeating: 0, count: EchoDelayEstimator.window)
    private var filled = 0
    private var framesSinceEstimate = 0
    private var re1 = [Double](repeating: 0, count: 2 * EchoDelayEstimator.window)
    private var im1 = [Double](repeating: 0, count: 2 * EchoDelayEstimator.window)
    private var re2 = [Double](repeating: 0, count: 2 * EchoDelayEstimator.window)
    private var im2 = [Double](repeating: 0, count: 2 * EchoDelayEstimator.window)
    private var lastCandidate: Int?
    /// Lags searched, in samples: the echo from 40 ms before to 120 ms after the reference.
    let minLag = -640, maxLag = 1920

    /// Searching: the alignment is unknown (a start, a device restart), so a single
    /// clear estimate is taken at once; tracking wants two in a row to agree.
    private(set) var searching = true

    /// Adds one frame (microphone before processing, and its reference). Returns the
    /// lag (microphone behind reference, in samples) when it is sure of it, else nil.
    func add(mic frame: UnsafeBufferPointer<Int16>, reference: UnsafeBufferPointer<Int16>) -> Int? {
        let n = frame.count
        mic.withUnsafeMutableBufferPointer { m in
            ref.withUnsafeMutableBufferPointer { r in
                m.baseAddress!.update(from: m.baseAddress! + n, count: Self.window - n)
                r.baseAddress!.update(from: r.baseAddress! + n, count: Self.window - n)
                for i in 0..<n {
                    m[Self.window - n + i] = Double(frame[i])
                    r[Self.window - n + i] = Double(reference[i])
                }
            }
        }
        filled = min(Self.window, filled + n)
        framesSinceEstimate += 1
        guard filled == Self.window, framesSinceEstimate >= (searching ? 10 : 25) else { return nil }
        framesSinceEstimate = 0
        guard let lag = estimate() else {
            lastCandidate = nil
            return nil
        }
        defer { lastCandidate = lag }
        if searching {
            searching = false
            return lag
        }
        if let last = lastCandidate, abs(last - lag) <= 16 { return lag }
        return nil
    }

    /// The history was computed with another alignment: start again.
    func reset(searching: Bool) {
        filled = 0
        lastCandidate = nil
        self.searching = searching
    }

    private func estimate() -> Int? {
        let w = Self.window
        var refEnergy = 0.0, micEnergy = 0.0
        for i in 0..<w {
            refEnergy += ref[i] * ref[i]
            micEnergy += mic[i] * mic[i]
        }
        // The speaker must have played audibly, and the microphone heard something.
        guard refEnergy > 1e5 * Double(w), micEnergy > 1e4 * Double(w) else { return nil }
        for i in 0..<(2 * w) {
            re1[i] = i < w ? mic[i] : 0
            im1[i] = 0
            re2[i] = i < w ? ref[i] : 0
            im2[i] = 0
        }
        re1.withUnsafeMutableBufferPointer { r in im1.withUnsafeMutableBufferPointer { fft.transform(real: r, imag: $0) } }
        re2.withUnsafeMutableBufferPointer { r in im2.withUnsafeMutableBufferPointer { fft.transform(real: r, imag: $0) } }
        // mic × conj(ref), then the inverse transform by conjugation: xc[k] = Σ mic[n+k]·ref[n].
        for i in 0..<(2 * w) {
            let a = re1[i], b = im1[i], c = re2[i], d = im2[i]
            re1[i] = a * c + b * d
            im1[i] = -(b * c - a * d)
        }
        re1.withUnsafeMutableBufferPointer { r in im1.withUnsafeMutableBufferPointer { fft.transform(real: r, imag: $0) } }
        var best = 0, bestValue = 0.0
        for lag in minLag...maxLag {
            let v = abs(re1[(lag + 2 * w) % (2 * w)])
            if v > bestValue {
                bestValue = v
                best = lag
            }
        }
        let correlation = bestValue / Double(2 * w) / (refEnergy * micEnergy).squareRoot()
        // A clear peak only: double talk or noise gives none, and then nothing moves.
        return correlation > 0.5 ? best : nil
    }
}
