import XCTest
@testable import MillisCore

final class AudioFileReaderTests: ScratchDirectoryTestCase {

    private func read(_ path: String) throws -> [Int16] {
        try AudioFileReader.read(path: path)
    }

    /// Every Int16 that matters: both extremes, ±1, 0, and a spread of others.
    private static let reference: [Int16] = [Int16.min, -32767, -1, 0, 1, 32766, Int16.max]
        + (0..<993).map { Int16(truncatingIfNeeded: $0 * 2477 + 11) }

    // MARK: WAV, 16 kHz mono

    func testWAV16kMonoRoundTripsExactly() throws {
        let path = dir.path("ref.wav")
        let writer = try WAVFileWriter(path: path, channels: 1, sampleRate: 16_000)
        try Self.reference.withUnsafeBufferPointer { b throws(MillisError) in try writer.write(b) }
        try writer.finish()
        XCTAssertEqual(try read(path), Self.reference)
    }

    func testUpperCaseExtensionAndStreamedDataSizes() throws {
        // A writer that never came back to the header (a crash, a pipe) leaves 0 or
        // 0xFFFFFFFF: the data runs to the end of the file.
        for declared in [0, 0xFFFF_FFFF] {
            let path = dir.path("streamed-\(declared).WAV")
            let bytes = TestFiles.wav(channels: 1, rate: 16_000, bits: 16, data: TestFiles.pcm16(Self.reference),
                                      dataDeclaredSize: declared)
            try TestFiles.write(bytes, to: path)
            XCTAssertEqual(try read(path), Self.reference, "data size \(declared)")
        }
    }

    func testUnknownAndOddSizedChunksAreSkipped() throws {
        let path = dir.path("chunks.wav")
        let extra = TestFiles.chunk("LIST", [1, 2, 3]) + TestFiles.chunk("fact", TestFiles.u32(1000))
        try TestFiles.write(TestFiles.wav(channels: 1, rate: 16_000, bits: 16, data: TestFiles.pcm16(Self.reference),
                                          before: extra), to: path)
        XCTAssertEqual(try read(path), Self.reference)
    }

    func testDataShorterThanDeclaredGivesWhatIsThere() throws {
        let path = dir.path("short.wav")
        let full = TestFiles.wav(channels: 1, rate: 16_000, bits: 16, data: TestFiles.pcm16(Self.reference))
        // Cut in the middle of a sample: the half sample is not a sample.
        try TestFiles.write(Array(full[0..<(44 + 2 * 100 + 1)]), to: path)
        XCTAssertEqual(try read(path), Array(Self.reference[0..<100]))
    }

    func testStereoAt16kIsTheMeanOfTheChannels() throws {
        let path = dir.path("stereo16k.wav")
        let left: [Int16] = [1000, -32768, 32767, 3, -3, 0]
        let right: [Int16] = [3000, -32768, 32767, -2, 2, 1]
        let interleaved = zip(left, right).flatMap { [$0, $1] }
        try TestFiles.writeWAV(interleaved, channels: 2, to: path)
        // (L + R) / 2, rounded half away from zero.
        XCTAssertEqual(try read(path), [2000, -32768, 32767, 1, -1, 1])
    }

    // MARK: WAV, resampled

    func test48kStereoSineBecomes16kMonoAtTheSameFrequencyAndLevel() throws {
        let path = dir.path("sine48k.wav")
        let n = 48_001
        // 1 kHz at −9 dBFS RMS, split unevenly between the channels (their mean is the tone).
        let sine = TestFiles.tone(frequency: 1000, dBFS: -9, count: n, rate: 48_000)
        let interleaved = sine.flatMap { TestFiles.int16([$0 * 1.2, $0 * 0.8]) }
        try TestFiles.writeWAV(interleaved, channels: 2, rate: 48_000, to: path)

        let out = try read(path)
        XCTAssertLessThanOrEqual(abs(out.count - n / 3), 2, "\(out.count) samples for \(n) at 48 kHz")
        let middle = out[1000..<(out.count - 1000)]

        // The strongest component on a 50 Hz grid is 1 kHz, with nothing else within 40 dB.
        let grid = stride(from: 100.0, through: 7900, by: 50).map { ($0, TestFiles.magnitude(middle, frequency: $0)) }
        let peak = grid.max { $0.1 < $1.1 }!
        XCTAssertEqual(peak.0, 1000)
        let others = grid.filter { abs($0.0 - 1000) > 100 }.map(\.1).max()!
        XCTAssertGreaterThan(20 * log10(peak.1 / others), 40)

        let inputLevel = TestFiles.decibels(TestFiles.int16(Array(sine[3000..<(n - 3000)])))
        XCTAssertEqual(TestFiles.decibels(middle), inputLevel, accuracy: 1.0)
        XCTAssertEqual(inputLevel, -9, accuracy: 0.1)

        // No delay: sample i of the output is the input's sample 3i (the resampler's
        // lookahead is flushed and its leading zeros skipped).
        let expected = TestFiles.int16(TestFiles.tone(frequency: 1000, dBFS: -9, count: out.count))
        let best = TestFiles.bestCorrelation(out, expected, lags: -8...8)
        XCTAssertEqual(best.lag, 0, "output is late by \(best.lag) samples")
        XCTAssertGreaterThan(best.value, 0.99)
    }

    func testResamplingKeepsTheEndOfTheFile() throws {
        // A tone burst in the file's last 100 ms must come out in the last 100 ms.
        let path = dir.path("tail.wav")
        let silence = [Double](repeating: 0, count: 48_000 - 4800)
        let burst = TestFiles.tone(frequency: 1000, dBFS: -12, count: 4800, rate: 48_000)
        try TestFiles.writeWAV(TestFiles.int16(silence + burst), rate: 48_000, to: path)
        let out = try read(path)
        XCTAssertEqual(out.count, 16_000)
        XCTAssertEqual(TestFiles.decibels(out[(16_000 - 1500)..<(16_000 - 100)]), -12, accuracy: 1)
        XCTAssertLessThan(TestFiles.decibels(out[0..<(16_000 - 1700)]), -60)
    }

    // MARK: WAV sample formats

    /// 16-bit values every format can carry exactly (8-bit: multiples of 256).
    private static let coarse: [Int16] = [Int16.min, -256, 0, 256, 32512, -32512] + (0..<200).map { Int16($0 - 100) * 256 }

    func testSampleFormatsDecodeToTheSameValues() throws {
        struct Case {
            var name: String
            var tag: Int
            var bits: Int
            var extensible = false
            var values: [Int16] = AudioFileReaderTests.reference
            var encode: (Int16) -> [UInt8]
        }
        func float32(_ v: Int16) -> [UInt8] { TestFiles.u32(Int((Float(v) / 32768).bitPattern)) }
        func float64(_ v: Int16) -> [UInt8] {
            let bits = (Double(v) / 32768).bitPattern
            return TestFiles.u32(Int(bits & 0xFFFF_FFFF)) + TestFiles.u32(Int(bits >> 32))
        }
        let cases = [
            Case(name: "u8", tag: 1, bits: 8, values: Self.coarse) { [UInt8(Int($0) / 256 + 128)] },
            Case(name: "s16", tag: 1, bits: 16) { TestFiles.u16(Int($0)) },
            // Low bits below the 16th: a quarter of a 16-bit step, rounded away.
            Case(name: "s24", tag: 1, bits: 24) { Array(TestFiles.u32(Int($0) << 8 | 0x3F)[0..<3]) },
            Case(name: "s32", tag: 1, bits: 32) { TestFiles.u32(Int($0) << 16) },
            Case(name: "f32", tag: 3, bits: 32, encode: float32),
            Case(name: "f64", tag: 3, bits: 64, encode: float64),
            Case(name: "extensible s16", tag: 1, bits: 16, extensible: true) { TestFiles.u16(Int($0)) },
            Case(name: "extensible s24", tag: 1, bits: 24, extensible: true) { Array(TestFiles.u32(Int($0) << 8)[0..<3]) },
            Case(name: "extensible f32", tag: 3, bits: 32, extensible: true, encode: float32),
        ]
        for c in cases {
            let path = dir.path("\(c.name).wav")
            try TestFiles.write(TestFiles.wav(tag: c.tag, channels: 1, rate: 16_000, bits: c.bits,
                                              data: c.values.flatMap(c.encode), extensible: c.extensible), to: path)
            XCTAssertEqual(try read(path), c.values, c.name)
        }
    }

    func testStereoExtensible24BitIsMixed() throws {
        let path = dir.path("ext24.wav")
        let left: [Int16] = [100, -100, 32767]
        let right: [Int16] = [300, -300, 32767]
        func s24(_ v: Int16) -> [UInt8] { Array(TestFiles.u32(Int(v) << 8)[0..<3]) }
        let data: [UInt8] = zip(left, right).flatMap { l, r -> [UInt8] in s24(l) + s24(r) }
        try TestFiles.write(TestFiles.wav(tag: 1, channels: 2, rate: 16_000, bits: 24, data: data, extensible: true), to: path)
        XCTAssertEqual(try read(path), [200, -200, 32767])
    }

    func testFloatBeyondFullScaleIsClamped() throws {
        let path = dir.path("loud.wav")
        let values: [Float] = [1.5, -1.5, 1.0, -1.0, 0.5]
        try TestFiles.write(TestFiles.wav(tag: 3, channels: 1, rate: 16_000, bits: 32,
                                          data: values.flatMap { TestFiles.u32(Int($0.bitPattern)) }), to: path)
        XCTAssertEqual(try read(path), [32767, -32768, 32767, -32768, 16384])
    }

    /// A float WAV may hold NaN, infinities and huge values: converting them trapped in
    /// `Int(x * 32768)` (a hostile file killed the host). NaN is silence, the others clamp.
    func testFloatNaNInfinityAndHugeValuesDoNotTrap() throws {
        let values: [Float] = [.nan, .infinity, -.infinity, 1e30, -1e30, .greatestFiniteMagnitude, 0.5, -.nan]
        let path32 = dir.path("nan32.wav")
        try TestFiles.write(TestFiles.wav(tag: 3, channels: 1, rate: 16_000, bits: 32,
                                          data: values.flatMap { TestFiles.u32(Int($0.bitPattern)) }), to: path32)
        XCTAssertEqual(try read(path32), [0, 32767, -32768, 32767, -32768, 32767, 16384, 0])
        // 64-bit: 1e300 does not even fit a Float (it becomes infinity on the way).
        let doubles: [Double] = [.nan, 1e300, -1e300, .infinity, 0.25]
        let path64 = dir.path("nan64.wav")
        try TestFiles.write(TestFiles.wav(tag: 3, channels: 1, rate: 16_000, bits: 64,
                                          data: doubles.flatMap { d in (0..<8).map { UInt8(truncatingIfNeeded: d.bitPattern >> (8 * UInt64($0))) } }),
                            to: path64)
        XCTAssertEqual(try read(path64), [0, 32767, -32768, 32767, 8192])
        // Through the resampler (48 kHz): NaN spreads over the filter, and still no trap.
        let path48 = dir.path("nan48.wav")
        let long = [Float](repeating: 0.1, count: 480) + values + [Float](repeating: 0.1, count: 480)
        try TestFiles.write(TestFiles.wav(tag: 3, channels: 1, rate: 48_000, bits: 32,
                                          data: long.flatMap { TestFiles.u32(Int($0.bitPattern)) }), to: path48)
        XCTAssertEqual(try read(path48).count, 323, "968 samples at 48 kHz")
    }

    // MARK: WAV errors

    private func assertFileError(_ path: String, mentions words: [String], file: StaticString = #filePath, line: UInt = #line) {
        let error = TestFiles.millisError({ () throws(MillisError) in try AudioFileReader.read(path: path) }, file: file, line: line)
        XCTAssertEqual(error?.status, .file, file: file, line: line)
        for word in [path] + words {
            XCTAssertTrue(error?.message.contains(word) ?? false, "'\(word)' missing from: \(error?.message ?? "")",
                          file: file, line: line)
        }
    }

    func testGarbageIsAFileError() throws {
        let path = dir.path("garbage.wav")
        try TestFiles.write((0..<1000).map { UInt8(truncatingIfNeeded: $0 * 151 + 7) }, to: path)
        assertFileError(path, mentions: ["not a WAV file", "RIFF"])
    }

    func testEmptyFileIsAFileError() throws {
        let path = dir.path("empty.wav")
        try TestFiles.write([], to: path)
        assertFileError(path, mentions: ["not a WAV file"])
    }

    func testTruncatedHeadersAreFileErrors() throws {
        let full = TestFiles.wav(channels: 1, rate: 16_000, bits: 16, data: TestFiles.pcm16(Self.reference))
        // In the fmt chunk, and just after it (no data chunk).
        for (cut, why) in [(30, "fmt"), (40, "no data chunk")] {
            let path = dir.path("cut\(cut).wav")
            try TestFiles.write(Array(full[0..<cut]), to: path)
            assertFileError(path, mentions: ["not a WAV file", why])
        }
    }

    func testUnsupportedFormatsAreFileErrorsThatSayWhat() throws {
        // IMA ADPCM (tag 0x11), 12-bit PCM, 16-bit float.
        for (tag, bits) in [(0x11, 4), (1, 12), (3, 16)] {
            let path = dir.path("tag\(tag)-\(bits).wav")
            try TestFiles.write(TestFiles.wav(tag: tag, channels: 1, rate: 16_000, bits: bits, data: [0, 0, 0, 0]), to: path)
            assertFileError(path, mentions: ["format tag \(tag)", "\(bits)-bit"])
        }
    }

    func testZeroChannelsIsAFileError() throws {
        let path = dir.path("nochannels.wav")
        var bytes = TestFiles.wav(channels: 1, rate: 16_000, bits: 16, data: [0, 0])
        bytes[22] = 0
        try TestFiles.write(bytes, to: path)
        assertFileError(path, mentions: ["0 channels"])
    }

    func testMissingFileIsAFileError() {
        assertFileError(dir.path("missing.wav"), mentions: ["could not open", "No such file or directory"])
        assertFileError(dir.path("missing.opus"), mentions: ["could not open", "No such file or directory"])
    }

    func testUnknownExtensionIsAnInvalidArgument() {
        let error = TestFiles.millisError { () throws(MillisError) in try AudioFileReader.read(path: "x.mp3") }
        XCTAssertEqual(error?.status, .invalidArgument)
    }

    // MARK: Ogg Opus

    func testOggOpusRoundTrip() throws {
        let path = dir.path("tone.opus")
        let tone = TestFiles.int16(TestFiles.tone(frequency: 1000, dBFS: -15, count: 16_000))
        let writer = try OggOpusFileWriter(path: path, channels: 1, sampleRate: 16_000, title: "tone")
        for start in stride(from: 0, to: tone.count, by: 320) {
            try tone.withUnsafeBufferPointer { b throws(MillisError) in
                try writer.write(UnsafeBufferPointer(rebasing: b[start..<min(start + 320, b.count)]))
            }
        }
        try writer.finish()

        let out = try read(path)
        XCTAssertLessThanOrEqual(abs(out.count - tone.count), tone.count / 100, "\(out.count) samples for \(tone.count)")
        let best = TestFiles.bestCorrelation(out, tone, lags: -400...400)
        XCTAssertGreaterThan(best.value, 0.9, "best correlation \(best.value) at lag \(best.lag)")
        XCTAssertEqual(TestFiles.decibels(out[2000..<14_000]), -15, accuracy: 1)
    }

    func testGarbageOpusIsAFileError() throws {
        let path = dir.path("garbage.ogg")
        try TestFiles.write((0..<1000).map { UInt8(truncatingIfNeeded: $0 * 151 + 7) }, to: path)
        assertFileError(path, mentions: ["not an Ogg Opus file"])
    }
}
