import XCTest
@testable import MillisCore

#if canImport(Glibc)
import Glibc
#endif

final class AnalyserTests: XCTestCase {
    // MARK: Parameters

    func testRejectsFFTSizesOutsidePowersOfTwoFrom32To32768() {
        let analyser = Analyser()
        for bad in [0, -32, 31, 48, 1000, 65_536] {
            XCTAssertThrowsError(try analyser.setFFTSize(bad), "\(bad)") { error in
                guard let error = error as? MillisError else { return XCTFail("\(bad): \(error)") }
                XCTAssertEqual(error.status, .invalidArgument)
                XCTAssertTrue(error.message.contains("32") && error.message.contains("32768"), error.message)
            }
        }
        XCTAssertEqual(analyser.fftSize, 2048, "a refused size must leave the old one")
        for good in [32, 64, 1024, 32_768] {
            XCTAssertNoThrow(try analyser.setFFTSize(good))
            XCTAssertEqual(analyser.fftSize, good)
        }
    }

    func testRejectsBadDecibelRangesAndSmoothingConstants() throws {
        let analyser = Analyser()
        let ranges: [(Double, Double)] = [(-30, -30), (-30, -100), (.nan, -30), (-100, .nan), (-.infinity, -30), (-100, .infinity)]
        for (low, high) in ranges {
            XCTAssertThrowsError(try analyser.setDecibelRange(min: low, max: high), "[\(low), \(high)]") { error in
                XCTAssertEqual((error as? MillisError)?.status, .invalidArgument)
            }
        }
        XCTAssertEqual(analyser.minDecibels, -100)
        XCTAssertEqual(analyser.maxDecibels, -30)
        try analyser.setDecibelRange(min: -90, max: -10)
        XCTAssertEqual(analyser.minDecibels, -90)
        XCTAssertEqual(analyser.maxDecibels, -10)

        for bad in [1.5, -0.1, .nan, .infinity] {
            XCTAssertThrowsError(try analyser.setSmoothingTimeConstant(bad), "\(bad)") { error in
                XCTAssertEqual((error as? MillisError)?.status, .invalidArgument)
            }
        }
        XCTAssertEqual(analyser.smoothingTimeConstant, 0.8)
        try analyser.setSmoothingTimeConstant(0)
        try analyser.setSmoothingTimeConstant(1)
        XCTAssertEqual(analyser.smoothingTimeConstant, 1)
    }

    func testBinCountsAndHowManyValuesEachGetterWrites() throws {
        let analyser = Analyser()
        XCTAssertEqual(analyser.sampleRate, 16_000)
        XCTAssertEqual(analyser.fftSize, 2048)
        XCTAssertEqual(analyser.frequencyBinCount, 1024)
        try analyser.setFFTSize(256)
        XCTAssertEqual(analyser.frequencyBinCount, 128)

        XCTAssertEqual(floatFrequencies(analyser, count: 1000).count, 128)
        XCTAssertEqual(floatFrequencies(analyser, count: 10).count, 10)
        XCTAssertEqual(byteFrequencies(analyser, count: 1000).count, 128)
        XCTAssertEqual(byteFrequencies(analyser, count: 0).count, 0)
        XCTAssertEqual(floatTimeDomain(analyser, count: 1000).count, 256)
        XCTAssertEqual(floatTimeDomain(analyser, count: 7).count, 7)
        XCTAssertEqual(byteTimeDomain(analyser, count: 1000).count, 256)
        XCTAssertEqual(byteTimeDomain(analyser, count: 3).count, 3)
    }

    // MARK: Time domain

    /// ramp[i] = 2048·i - 32768, so x = i/16 - 1 and the byte value floor(128·(1 + x)) = 8·i exactly.
    private let ramp = (0..<32).map { Int16($0 * 2048 - 32_768) }

    func testTimeDomainOfARampPadsMissingHistoryWithZeros() throws {
        let analyser = Analyser()
        try analyser.setFFTSize(32)
        analyser.write(Array(ramp[0..<20]))

        let floats = floatTimeDomain(analyser, count: 32)
        XCTAssertEqual(Array(floats[0..<12]), [Float](repeating: 0, count: 12))
        XCTAssertEqual(Array(floats[12...]), (0..<20).map { Float($0) / 16 - 1 })

        let bytes = byteTimeDomain(analyser, count: 32)
        XCTAssertEqual(Array(bytes[0..<12]), [UInt8](repeating: 128, count: 12))
        XCTAssertEqual(Array(bytes[12...]), (0..<20).map { UInt8($0 * 8) })

        // A short buffer takes the oldest samples: the block is truncated, not its start.
        XCTAssertEqual(floatTimeDomain(analyser, count: 13), [Float](repeating: 0, count: 12) + [-1])
    }

    func testTimeDomainAcrossTheRingWrapAndAfterEnlargingFFTSize() throws {
        let analyser = Analyser()
        try analyser.setFFTSize(32)
        // 32 760 zeros in audio-thread-sized blocks put the ramp across the end of the ring.
        let silence = [Int16](repeating: 0, count: 160)
        for _ in 0..<(32_760 / 160) { analyser.write(silence) }
        analyser.write([Int16](repeating: 0, count: 32_760 % 160))
        analyser.write(ramp)
        XCTAssertEqual(byteTimeDomain(analyser, count: 32), (0..<32).map { UInt8($0 * 8) })

        analyser.write(ramp)
        try analyser.setFFTSize(64)
        XCTAssertEqual(byteTimeDomain(analyser, count: 64), (0..<64).map { UInt8($0 % 32 * 8) },
                       "enlarging fftSize must show the audio already written")
    }

    func testByteTimeDomainClampsAndFloatWritesDropNonFiniteSamples() throws {
        let analyser = Analyser()
        try analyser.setFFTSize(32)
        let floats: [Float] = [-2, -1, -0.5, 0, 0.5, 0.998, 1, 3, .nan, .infinity]
        floats.withUnsafeBufferPointer { analyser.write(floats: $0) }
        XCTAssertEqual(Array(byteTimeDomain(analyser, count: 32).suffix(10)), [0, 0, 64, 128, 192, 255, 255, 255, 128, 128])
        XCTAssertEqual(Array(floatTimeDomain(analyser, count: 32).suffix(3)), [3, 0, 0])
    }

    // MARK: Level

    func testRMSOfAFullScaleSineAndOfSilence() throws {
        let analyser = Analyser()
        XCTAssertEqual(analyser.rmsDBFS, -120, "nothing written is silence")
        analyser.write(sine(hz: 1000, amplitude: 32_767, count: 4096))
        XCTAssertEqual(analyser.rmsDBFS, -3.0103, accuracy: 0.01)
        analyser.write(sine(hz: 1000, amplitude: 16_384, count: 4096))
        XCTAssertEqual(analyser.rmsDBFS, -9.0309, accuracy: 0.01)
        analyser.write([Int16](repeating: 0, count: 2048))
        XCTAssertEqual(analyser.rmsDBFS, -120)
        analyser.write(sine(hz: 1000, amplitude: 32_767, count: 4096))
        analyser.reset()
        XCTAssertEqual(analyser.rmsDBFS, -120, "reset must forget the history")
    }

    // MARK: Frequency domain

    func testPeakOfA1kHzSineIsAtBinRound1000Over16000TimesN() throws {
        for size in [256, 2048, 8192] {
            let analyser = Analyser()
            try analyser.setFFTSize(size)
            try analyser.setSmoothingTimeConstant(0)
            analyser.write(sine(hz: 1000, amplitude: 16_000, count: size))
            let expected = Int((1000.0 / 16_000 * Double(size)).rounded())

            let floats = floatFrequencies(analyser, count: size / 2)
            XCTAssertEqual(floats.indices.max { floats[$0] < floats[$1] }, expected, "fftSize \(size)")
            // |X[k]|/N of a sine of amplitude A at bin k with this window is A·a0/2; a0 = 0.42.
            XCTAssertEqual(Double(floats[expected]), 20 * log10(16_000.0 / 32_768 * 0.42 / 2), accuracy: 0.01)

            let bytes = byteFrequencies(analyser, count: size / 2)
            XCTAssertEqual(bytes[expected], 255, "a -19.8 dB peak is above maxDecibels -30")
        }
    }

    func testSilenceIsMinusInfinityAndByteZero() {
        let analyser = Analyser()
        XCTAssertTrue(floatFrequencies(analyser, count: 1024).allSatisfy { $0 == -Float.infinity })
        XCTAssertTrue(byteFrequencies(analyser, count: 1024).allSatisfy { $0 == 0 })
    }

    func testWithoutSmoothingMatchesANaiveDFT() throws {
        let size = 256
        let analyser = Analyser()
        try analyser.setFFTSize(size)
        try analyser.setSmoothingTimeConstant(0)
        let audio = testSignal(count: size + 100, seed: 7)
        analyser.write(audio)

        let reference = decibels(magnitudes(of: Array(audio.suffix(size))))
        assertClose(floatFrequencies(analyser, count: size / 2), reference)

        // Bytes from the same (unsmoothed, so identical) frame, mapped over [-100, -30].
        let expected = reference.map { db -> UInt8 in
            db.isFinite ? UInt8(min(255, max(0, (255 / 70 * (db + 100)).rounded(.down)))) : 0
        }
        let bytes = byteFrequencies(analyser, count: size / 2)
        for k in 0..<(size / 2) {
            // Float rounding may put a value right on a step boundary to the other side.
            XCTAssertLessThanOrEqual(abs(Int(bytes[k]) - Int(expected[k])), 1, "bin \(k)")
        }
        XCTAssertGreaterThan(zip(bytes, expected).filter { $0 == $1 }.count, size / 2 - 3)
    }

    func testSmoothingHalfOverTwoCallsMatchesANaiveDFT() throws {
        let size = 256
        let analyser = Analyser()
        try analyser.setFFTSize(size)
        try analyser.setSmoothingTimeConstant(0.5)
        let first = testSignal(count: size, seed: 1)
        let second = testSignal(count: 300, seed: 2)

        analyser.write(first)
        let frame1 = floatFrequencies(analyser, count: size / 2)
        analyser.write(second)
        let frame2 = floatFrequencies(analyser, count: size / 2)

        // X̂prev starts at zero, so the first call is half the magnitude.
        let x1 = magnitudes(of: first)
        let x2 = magnitudes(of: Array((first + second).suffix(size)))
        let smoothed1 = x1.map { 0.5 * $0 }
        let smoothed2 = zip(smoothed1, x2).map { 0.5 * $0 + 0.5 * $1 }
        assertClose(frame1, decibels(smoothed1))
        assertClose(frame2, decibels(smoothed2))

        // A new fftSize restarts the smoothing from zero; the same size again does not.
        try analyser.setFFTSize(size)
        let frame3 = floatFrequencies(analyser, count: size / 2)
        assertClose(frame3, decibels(zip(smoothed2, x2).map { 0.5 * $0 + 0.5 * $1 }))
        try analyser.setFFTSize(size * 2)
        try analyser.setFFTSize(size)
        assertClose(floatFrequencies(analyser, count: size / 2), decibels(x2.map { 0.5 * $0 }))

        analyser.reset()
        analyser.write(first)
        assertClose(floatFrequencies(analyser, count: size / 2), decibels(smoothed1), "reset must forget the smoothing")
    }

    /// At 0.5 the two weights are equal, so a swap of τ and 1 - τ would pass the test above.
    func testDefaultSmoothingWeighsThePreviousFrameByPointEight() throws {
        let size = 128
        let analyser = Analyser()
        try analyser.setFFTSize(size)
        XCTAssertEqual(analyser.smoothingTimeConstant, 0.8)
        let first = testSignal(count: size, seed: 3)
        let second = testSignal(count: 200, seed: 4)

        analyser.write(first)
        let frame1 = floatFrequencies(analyser, count: size / 2)
        analyser.write(second)
        let frame2 = floatFrequencies(analyser, count: size / 2)

        let smoothed1 = magnitudes(of: first).map { 0.2 * $0 }
        let x2 = magnitudes(of: Array((first + second).suffix(size)))
        assertClose(frame1, decibels(smoothed1))
        assertClose(frame2, decibels(zip(smoothed1, x2).map { 0.8 * $0 + 0.2 * $1 }))
    }

    /// Meaningful under the TSan build; elsewhere it checks that concurrent use neither
    /// crashes nor leaves the analyser inconsistent.
    func testAudioThreadWritesWhileAnotherThreadReadsAndResizes() throws {
        let analyser = Analyser()
        // 500 Hz: whole periods in each 160-sample block and in 1024 samples, so the level is exact.
        let block = sine(hz: 500, amplitude: 20_000, count: 160)
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            if worker == 0 {
                for _ in 0..<2000 { analyser.write(block) }
            } else {
                var floats = [Float](repeating: 0, count: 1024)
                var bytes = [UInt8](repeating: 0, count: 1024)
                for round in 0..<200 {
                    try? analyser.setFFTSize(round % 2 == 0 ? 256 : 1024)
                    _ = floats.withUnsafeMutableBufferPointer { analyser.getFloatFrequencyData($0) }
                    _ = bytes.withUnsafeMutableBufferPointer { analyser.getByteTimeDomainData($0) }
                    _ = analyser.rmsDBFS
                }
            }
        }
        XCTAssertEqual(analyser.fftSize, 1024)
        XCTAssertEqual(analyser.rmsDBFS, -7.2987, accuracy: 0.01, "a sine of amplitude 20000/32768 is 20·log10(0.61/√2) dBFS")
    }

    func testFFTMatchesANaiveDFTAtEverySize() {
        var size = 32
        while size <= 1024 {
            let fft = FFT(size: size)
            var real = (0..<size).map { sin(Double($0) * 0.37) + Double($0 % 5) }
            var imag = (0..<size).map { cos(Double($0) * 1.1) }
            let expected = naiveDFT(real: real, imag: imag)
            real.withUnsafeMutableBufferPointer { re in
                imag.withUnsafeMutableBufferPointer { im in fft.transform(real: re, imag: im) }
            }
            for k in 0..<size {
                XCTAssertEqual(real[k], expected.real[k], accuracy: 1e-9 * Double(size), "size \(size) bin \(k)")
                XCTAssertEqual(imag[k], expected.imag[k], accuracy: 1e-9 * Double(size), "size \(size) bin \(k)")
            }
            size *= 2
        }
    }

    // MARK: Reference and helpers

    /// |DFT(w·x)[k]| / N for k < N/2 with the specification's Blackman window, in Double.
    private func magnitudes(of samples: [Int16]) -> [Double] {
        let size = samples.count
        let alpha = 0.16
        let windowed = samples.enumerated().map { n, s -> Double in
            let w = (1 - alpha) / 2 - 0.5 * cos(2 * .pi * Double(n) / Double(size)) + alpha / 2 * cos(4 * .pi * Double(n) / Double(size))
            return Double(s) / 32_768 * w
        }
        let dft = naiveDFT(real: windowed, imag: [Double](repeating: 0, count: size))
        return (0..<(size / 2)).map { k in (dft.real[k] * dft.real[k] + dft.imag[k] * dft.imag[k]).squareRoot() / Double(size) }
    }

    private func naiveDFT(real: [Double], imag: [Double]) -> (real: [Double], imag: [Double]) {
        let size = real.count
        var outReal = [Double](repeating: 0, count: size)
        var outImag = [Double](repeating: 0, count: size)
        for k in 0..<size {
            for n in 0..<size {
                // k·n mod N keeps the angle small so that cos/sin stay exact to the last bits.
                let angle = -2 * .pi * Double(k * n % size) / Double(size)
                outReal[k] += real[n] * cos(angle) - imag[n] * sin(angle)
                outImag[k] += real[n] * sin(angle) + imag[n] * cos(angle)
            }
        }
        return (outReal, outImag)
    }

    private func decibels(_ magnitudes: [Double]) -> [Double] { magnitudes.map { 20 * log10($0) } }

    private func assertClose(_ got: [Float], _ expected: [Double], _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, expected.count, message, file: file, line: line)
        var compared = 0
        for (k, (g, e)) in zip(got, expected).enumerated() where e > -90 {
            XCTAssertEqual(Double(g), e, accuracy: 1e-3, "bin \(k) \(message)", file: file, line: line)
            compared += 1
        }
        // A comparison that skipped nearly every bin would prove nothing.
        XCTAssertGreaterThan(compared, expected.count * 3 / 4, message, file: file, line: line)
    }

    private func sine(hz: Double, amplitude: Double, count: Int) -> [Int16] {
        (0..<count).map { Int16((amplitude * sin(2 * .pi * hz * Double($0) / 16_000)).rounded()) }
    }

    /// Two tones off the bin centres plus deterministic noise, so that every bin has energy
    /// and leakage, not only the few a pure tone would light up.
    private func testSignal(count: Int, seed: UInt32) -> [Int16] {
        var state = seed
        return (0..<count).map { i in
            state = state &* 1_664_525 &+ 1_013_904_223
            let noise = Double(Int32(bitPattern: state) >> 16) / 32_768
            let t = Double(i) / 16_000
            let v = 0.5 * sin(2 * .pi * 1000 * t) + 0.2 * sin(2 * .pi * 3217.3 * t) + 0.05 * noise
            return Int16((v * 32_767).rounded())
        }
    }

    private func floatFrequencies(_ analyser: Analyser, count: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: count)
        let written = out.withUnsafeMutableBufferPointer { analyser.getFloatFrequencyData($0) }
        return Array(out.prefix(written))
    }

    private func byteFrequencies(_ analyser: Analyser, count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 77, count: count)
        let written = out.withUnsafeMutableBufferPointer { analyser.getByteFrequencyData($0) }
        return Array(out.prefix(written))
    }

    private func floatTimeDomain(_ analyser: Analyser, count: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: count)
        let written = out.withUnsafeMutableBufferPointer { analyser.getFloatTimeDomainData($0) }
        return Array(out.prefix(written))
    }

    private func byteTimeDomain(_ analyser: Analyser, count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 77, count: count)
        let written = out.withUnsafeMutableBufferPointer { analyser.getByteTimeDomainData($0) }
        return Array(out.prefix(written))
    }
}
