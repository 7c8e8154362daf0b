import CAudio

/// Mono sample-rate conversion with speexdsp's resampler (windowed-sinc, quality 0…10).
/// One instance per stream: it keeps filter history between calls, so consecutive
/// blocks join without clicks. Not thread-safe; each stream is owned by one thread.
final class Resampler {
    let inputRate: Int
    let outputRate: Int
    private let state: OpaquePointer?

    /// Quality 6: below the 16 kHz Nyquist the passband is flat within ±0.1 dB and
    /// aliasing stays under −90 dB, at a fraction of a millisecond of CPU per second.
    static let defaultQuality: Int32 = 6

    init?(inputRate: Int, outputRate: Int, quality: Int32 = Resampler.defaultQuality) {
        self.inputRate = inputRate
        self.outputRate = outputRate
        if inputRate == outputRate {
            state = nil
            return
        }
        var err: Int32 = 0
        guard let st = speex_resampler_init(1, spx_uint32_t(inputRate), spx_uint32_t(outputRate), quality, &err),
              err == 0 else { return nil }
        state = st
        // Without this the first block comes out short by the filter's delay.
        speex_resampler_skip_zeros(st)
    }

    deinit {
        if let state { speex_resampler_destroy(state) }
    }

    /// Output samples at most produced for `inputCount` input samples.
    func maxOutput(forInput inputCount: Int) -> Int {
        inputCount * outputRate / inputRate + 2
    }

    /// Converts all of `input`, appending the result to `output`.
    func process(_ input: UnsafeBufferPointer<Float>, into output: inout [Float]) {
        run(input, into: &output) { st, i, inLen, o, outLen in
            speex_resampler_process_float(st, 0, i, inLen, o, outLen)
        }
    }

    /// Int16 in, Int16 out (application audio formats).
    func process(_ input: UnsafeBufferPointer<Int16>, into output: inout [Int16]) {
        run(input, into: &output) { st, i, inLen, o, outLen in
            speex_resampler_process_int(st, 0, i, inLen, o, outLen)
        }
    }

    /// speexdsp takes what fits and says how much it took and gave: call until all
    /// input is consumed, into room grown once per call (none after warm-up).
    private func run<T: Numeric>(_ input: UnsafeBufferPointer<T>, into output: inout [T],
                                 _ speex: (OpaquePointer, UnsafePointer<T>, UnsafeMutablePointer<spx_uint32_t>,
                                           UnsafeMutablePointer<T>, UnsafeMutablePointer<spx_uint32_t>) -> Int32) {
        guard let state else {
            output.append(contentsOf: input)
            return
        }
        var offset = 0
        let room = maxOutput(forInput: input.count) + 16
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: room))
        var produced = 0
        output.withUnsafeMutableBufferPointer { out in
            while offset < input.count {
                var inLen = spx_uint32_t(input.count - offset)
                var outLen = spx_uint32_t(room - produced)
                guard outLen > 0 else { break }
                _ = speex(state, input.baseAddress! + offset, &inLen, out.baseAddress! + start + produced, &outLen)
                if inLen == 0 && outLen == 0 { break }
                offset += Int(inLen)
                produced += Int(outLen)
            }
        }
        output.removeLast(room - produced)
    }

    /// Input samples the filter holds back (its lookahead): they come out only when more
    /// input pushes them, or on `flush`.
    var inputLatency: Int {
        guard let state else { return 0 }
        return Int(speex_resampler_get_input_latency(state))
    }

    /// Forgets the filter history (after a clear or a pause: the next block is not a
    /// continuation of the last).
    func reset() {
        if let state { speex_resampler_reset_mem(state) }
    }
}
