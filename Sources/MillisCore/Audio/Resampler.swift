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
                speex_resampler_process_float(state, 0, input.baseAddress! + offset, &inLen,
                                              out.baseAddress! + start + produced, &outLen)
                if inLen == 0 && outLen == 0 { break }
                offset += Int(inLen)
                produced += Int(outLen)
            }
        }
        output.removeLast(room - produced)
    }

    /// Int16 in, Int16 out (application audio formats).
    func process(_ input: UnsafeBufferPointer<Int16>, into output: inout [Int16]) {
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
                speex_resampler_process_int(state, 0, input.baseAddress! + offset, &inLen,
                                            out.baseAddress! + start + produced, &outLen)
                if inLen == 0 && outLen == 0 { break }
                offset += Int(inLen)
                produced += Int(outLen)
            }
        }
        output.removeLast(room - produced)
    }

    /// Forgets the filter history (after a clear or a pause: the next block is not a
    /// continuation of the last).
    func reset() {
        if let state { speex_resampler_reset_mem(state) }
    }
}
