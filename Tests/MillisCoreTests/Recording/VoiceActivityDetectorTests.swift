import XCTest
@testable import MillisCore

final class VoiceActivityDetectorTests: XCTestCase {
    /// An arbitrary monotonic time for sample 0.
    private static let t0: UInt64 = 5_000_000_000_000
    private static let ms: UInt64 = 1_000_000

    private static func time(ms offset: Double) -> UInt64 { t0 + UInt64(offset * 1_000_000) }

    private static func silence(_ seconds: Double) -> [Double] { [Double](repeating: 0, count: Int(seconds * 16_000)) }

    private static func tone(_ seconds: Double, dBFS: Double = -20) -> [Double] {
        TestFiles.tone(frequency: 440, dBFS: dBFS, count: Int(seconds * 16_000))
    }

    /// Events, each with the number of samples fed when it came out.
    private func run(_ signal: [Double], chunk: (Int) -> Int) -> [(VoiceActivityDetector.Event, fed: Int)] {
        let samples = TestFiles.int16(signal)
        var vad = VoiceActivityDetector()
        var out: [(VoiceActivityDetector.Event, fed: Int)] = []
        var offset = 0
        var k = 0
        while offset < samples.count {
            let n = min(chunk(k), samples.count - offset)
            let events = samples.withUnsafeBufferPointer {
                vad.feed(UnsafeBufferPointer(rebasing: $0[offset..<(offset + n)]), startTime: Self.t0 + UInt64(offset) * 62_500)
            }
            offset += n
            k += 1
            out += events.map { ($0, offset) }
        }
        return out
    }

    private func events(_ signal: [Double], chunk: Int = 320) -> [VoiceActivityDetector.Event] {
        run(signal, chunk: { _ in chunk }).map(\.0)
    }

    /// Events as (is start, milliseconds since sample 0).
    private func described(_ events: [VoiceActivityDetector.Event]) -> [(start: Bool, ms: Double)] {
        events.map {
            switch $0 {
            case .speechStart(let at): return (true, Double(at - Self.t0) / 1e6)
            case .speechEnd(let at): return (false, Double(at - Self.t0) / 1e6)
            }
        }
    }

    private func assertEvents(_ events: [VoiceActivityDetector.Event], _ expected: [(start: Bool, ms: Double)],
                              file: StaticString = #filePath, line: UInt = #line) {
        let got = described(events)
        XCTAssertEqual(got.map(\.start), expected.map(\.start), "\(got)", file: file, line: line)
        for (g, e) in zip(got, expected) {
            XCTAssertEqual(g.ms, e.ms, accuracy: 10, "\(got)", file: file, line: line)
        }
    }

    func testSilenceIsNotSpeech() {
        XCTAssertEqual(events(Self.silence(3)), [])
        var vad = VoiceActivityDetector()
        XCTAssertFalse(vad.speaking)
        let zeros = [Int16](repeating: 0, count: 16_000)
        XCTAssertEqual(zeros.withUnsafeBufferPointer { vad.feed($0, startTime: 0) }, [])
    }

    func testToneAfterSilenceStartsAndEndsAtTheToneEdges() {
        let signal = Self.silence(0.5) + Self.tone(1) + Self.silence(0.5)
        let out = run(signal, chunk: { _ in 320 })
        assertEvents(out.map(\.0), [(true, 500), (false, 1500)])
        // Block-aligned edges are found exactly.
        XCTAssertEqual(out.map(\.0), [.speechStart(at: Self.time(ms: 500)), .speechEnd(at: Self.time(ms: 1500))])
        // The start after the 40 ms onset, the end once the 300 ms hangover has passed.
        XCTAssertEqual(out.map(\.fed), [16 * 540, 16 * 1800])
    }

    func testAClickIsNotSpeechButFortyMillisecondsAre() {
        XCTAssertEqual(events(Self.silence(0.5) + Self.tone(0.03, dBFS: -6) + Self.silence(1)), [], "a 30 ms click")
        assertEvents(events(Self.silence(0.5) + Self.tone(0.04) + Self.silence(1)), [(true, 500), (false, 540)])
    }

    /// A click shorter than 30 ms is not speech wherever it falls on the detector's 10 ms
    /// grid (each block must be loud over most of its 2 ms parts).
    func testAClickOffTheBlockGridIsNotSpeech() {
        // 12 ms starting 9 ms into a block: 1 ms, 10 ms and 1 ms of three blocks.
        let click = Self.silence(0.509) + Self.tone(0.012, dBFS: -6) + Self.silence(1)
        XCTAssertEqual(described(events(click)).map(\.start), [], "a 12 ms click: \(described(events(click)))")
        // 20 ms starting 5 ms into a block.
        let longer = Self.silence(0.505) + Self.tone(0.02, dBFS: -6) + Self.silence(1)
        XCTAssertEqual(described(events(longer)).map(\.start), [], "a 20 ms click: \(described(events(longer)))")
    }

    func testGapsShorterThanTheHangoverDoNotEndSpeech() {
        let words = Self.silence(0.5) + Self.tone(0.5) + Self.silence(0.2) + Self.tone(0.5) + Self.silence(1)
        assertEvents(events(words), [(true, 500), (false, 1700)])
        let sentences = Self.silence(0.5) + Self.tone(0.5) + Self.silence(0.4) + Self.tone(0.5) + Self.silence(1)
        assertEvents(events(sentences), [(true, 500), (false, 1000), (true, 1400), (false, 1900)])
    }

    func testChunkSizeDoesNotChangeTheEvents() {
        let signal = Self.silence(0.37) + Self.tone(0.61) + Self.silence(0.23) + Self.tone(0.033) + Self.silence(0.41)
            + Self.tone(0.9, dBFS: -35) + Self.silence(0.7)
        let reference = events(signal, chunk: 320)
        XCTAssertEqual(reference.count, 4, "\(described(reference))")
        XCTAssertEqual(events(signal, chunk: 37), reference)
        XCTAssertEqual(events(signal, chunk: 1), reference)
        XCTAssertEqual(events(signal, chunk: 160), reference)
        XCTAssertEqual(events(signal, chunk: 16_000), reference)
        var seed: UInt64 = 42
        XCTAssertEqual(run(signal, chunk: { _ in
            seed = seed &* 6_364_136_223_846_793_005 &+ 1
            return Int(seed >> 33) % 700 + 1
        }).map(\.0), reference)
    }

    func testSteadyNoiseIsNotSpeechAndSpeechAboveItIs() {
        let noise = TestFiles.noise(dBFS: -50, count: 16_000 * 6)
        XCTAssertEqual(events(noise), [], "−50 dBFS of noise")
        // 1 s of −30 dBFS speech over the same noise, from 3 s to 4 s.
        var speech = noise
        let tone = Self.tone(1, dBFS: -30)
        for i in 0..<tone.count { speech[48_000 + i] += tone[i] }
        assertEvents(events(speech), [(true, 3000), (false, 4000)])
    }

    func testQuietSpeechInSilenceIsSpeechButBelowMinimumIsNot() {
        assertEvents(events(Self.silence(0.5) + Self.tone(0.5, dBFS: -40) + Self.silence(0.5)), [(true, 500), (false, 1000)])
        XCTAssertEqual(events(Self.silence(0.5) + Self.tone(0.5, dBFS: -50) + Self.silence(0.5)), [])
    }

    func testResetForgetsSpeech() {
        var vad = VoiceActivityDetector()
        let loud = TestFiles.int16(Self.tone(0.1))
        XCTAssertEqual(loud.withUnsafeBufferPointer { vad.feed($0, startTime: Self.t0) }, [.speechStart(at: Self.t0)])
        XCTAssertTrue(vad.speaking)
        vad.reset()
        XCTAssertFalse(vad.speaking)
        let quiet = [Int16](repeating: 0, count: 16_000)
        XCTAssertEqual(quiet.withUnsafeBufferPointer { vad.feed($0, startTime: Self.t0 + 100 * Self.ms) }, [],
                       "no end for speech before the reset")
    }
}
