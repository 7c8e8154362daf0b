import XCTest
@testable import MillisCore

/// The audio test's signal work, without devices: the probe, and finding it in a
/// recording.
final class AudioTestTests: XCTestCase {
    func testProbeIsSpeechShapedNoiseAtMinus20dBFS() {
        let probe = Probe.samples(milliseconds: 2000)
        XCTAssertEqual(probe.count, 32_000)
        XCTAssertEqual(AudioTest.rmsDecibels(probe[...])!, -20, accuracy: 0.2)
        XCTAssertEqual(probe, Probe.samples(milliseconds: 2000), "the same samples every time")
        // Syllables: the 60 ms gaps are silent.
        XCTAssertTrue(probe[(16 * 200)..<(16 * 260)].allSatisfy { $0 == 0 })
    }

    func testLocateFindsTheEchoAtItsDelayAndLevel() {
        let probe = Probe.samples(milliseconds: 1000)
        var state: UInt32 = 99
        func noise() -> Int16 {
            state = state &* 1_664_525 &+ 1_013_904_223
            return Int16(truncatingIfNeeded: Int(state >> 16) % 200 - 100)
        }
        // 700 samples of noise, then the probe at half level, then noise.
        var mic = (0..<700).map { _ in noise() }
        mic += probe.map { Int16(Int($0) / 2) &+ noise() }
        mic += (0..<3000).map { _ in noise() }
        let found = AudioTest.locate(probe, in: mic)
        XCTAssertEqual(found?.lag, 700)
        XCTAssertGreaterThan(found?.correlation ?? 0, 0.9)
        // A recording that never heard the probe: no peak worth the name.
        let silence = (0..<(probe.count + 4000)).map { _ in noise() }
        XCTAssertLessThan(AudioTest.locate(probe, in: silence)?.correlation ?? 0, 0.2)
        XCTAssertNil(AudioTest.locate(probe, in: Array(mic[0..<100])), "shorter than the probe")
    }

    func testMicrophoneIndexOfAMomentFromTheCaptureClock() {
        let timeline: [(samples: Int, at: UInt64)] = [(1600, 1_000_000_000), (3200, 1_100_000_000)]
        XCTAssertEqual(AudioTest.Run.sampleIndex(at: 1_050_000_000, on: timeline)!, 2400, accuracy: 1)
        XCTAssertNil(AudioTest.Run.sampleIndex(at: 5, on: []))
    }

    func testRefusesFilesAndDurationsOutOfRange() {
        var settings = AudioSettings()
        XCTAssertThrowsError(try AudioTest.run(settings, durationMilliseconds: 999))
        settings.outputFile = "/tmp/x.wav"
        XCTAssertThrowsError(try AudioTest.run(settings, durationMilliseconds: 1000)) { error in
            XCTAssertEqual((error as? MillisError)?.status, .invalidState)
        }
    }
}
