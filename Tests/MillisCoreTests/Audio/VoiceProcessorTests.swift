import Foundation
import XCTest
@testable import MillisCore

/// The echo canceller on a simulated echo path: the microphone hears the played
/// speech delayed by the device latency, through a short room response, attenuated,
/// plus an independent talker; the figure is the echo return loss enhancement (ERLE).
final class VoiceProcessorTests: XCTestCase {
    static let frame = VoiceProcessor.frameSamples

    /// bindings/audio/user.wav (16 kHz mono PCM16, espeak-ng) without its pauses:
    /// 5 s of continuous speech.
    static func speech() throws -> [Int16] {
        let all = try wav()
        var voiced: [Int16] = []
        for start in stride(from: 0, to: all.count - frame, by: frame) {
            let block = all[start..<(start + frame)]
            if block.reduce(0.0, { $0 + Double($1) * Double($1) }) > 1e4 * Double(frame) {
                voiced += block
            }
        }
        return voiced
    }

    static func wav() throws -> [Int16] {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("bindings/audio/user.wav")
        let data = try Data(contentsOf: url)
        guard let range = data.range(of: Data("data".utf8)) else { throw CocoaError(.fileReadCorruptFile) }
        let body = data[(range.upperBound + 4)...]
        return body.withUnsafeBytes { raw in
            (0..<(raw.count / 2)).map { Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self)) }
        }
    }

    struct Run {
        var echoEnergy = 0.0, residualEnergy = 0.0
        var nearOut: [Double] = [], nearIn: [Double] = []
        var erle: Double { 10 * log10(echoEnergy / max(residualEnergy, 1)) }
    }

    /// Plays `far` (looped to `seconds`) into the echo path; `near` talks from
    /// `nearFrom` on. The reference handed to the canceller leads the echo by
    /// `leadSamples` (what EchoReference aims for) plus the room response.
    func simulate(processor: VoiceProcessor, seconds: Int, delaySamples: Int, leadSamples: Int,
                  nearFrom: Int) throws -> Run {
        let voice = try Self.speech()
        let total = seconds * 16_000
        let far = (0..<total).map { voice[$0 % voice.count] }
        // An independent talker: the same voice reversed and shifted (uncorrelated with
        // the far end).
        let reversed = Array(voice.reversed()[(voice.count / 3)...] + voice.reversed()[..<(voice.count / 3)])
        let near = (0..<total).map { $0 >= nearFrom ? Double(reversed[$0 % reversed.count]) * 0.5 : 0 }
        // Room: direct path and two reflections, −6 dB overall.
        let taps: [(Int, Double)] = [(0, 0.5), (80, 0.15), (200, 0.05)]
        var echo = [Double](repeating: 0, count: total)
        for n in 0..<total {
            var y = 0.0
            for (lag, gain) in taps where n - delaySamples - lag >= 0 {
                y += gain * Double(far[n - delaySamples - lag])
            }
            echo[n] = y
        }
        var run = Run()
        var mic = [Int16](repeating: 0, count: Self.frame)
        var ref = [Int16](repeating: 0, count: Self.frame)
        for start in stride(from: 0, to: total - Self.frame, by: Self.frame) {
            for i in 0..<Self.frame {
                let n = start + i
                mic[i] = Int16(clamping: Int((echo[n] + near[n]).rounded()))
                let r = n - (delaySamples - leadSamples)
                ref[i] = r >= 0 ? far[r] : 0
            }
            mic.withUnsafeMutableBufferPointer { m in
                ref.withUnsafeBufferPointer { processor.process(m, reference: $0) }
            }
            // Converged after 3 s; echo-only frames measure ERLE, double talk measures
            // how much of the near talker survives.
            guard start >= 3 * 16_000 else { continue }
            let echoE = (start..<(start + Self.frame)).reduce(0.0) { $0 + echo[$1] * echo[$1] }
            let nearE = (start..<(start + Self.frame)).reduce(0.0) { $0 + near[$1] * near[$1] }
            if start + Self.frame <= nearFrom {
                if echoE > 1e5 * Double(Self.frame) {
                    run.echoEnergy += echoE
                    run.residualEnergy += mic.reduce(0.0) { $0 + Double($1) * Double($1) }
                }
            } else if nearE > 0 {
                run.nearOut += mic.map(Double.init)
                run.nearIn += (start..<(start + Self.frame)).map { near[$0] }
            }
        }
        return run
    }

    static func correlation(_ a: [Double], _ b: [Double]) -> Double {
        let ma = a.reduce(0, +) / Double(a.count), mb = b.reduce(0, +) / Double(b.count)
        var ab = 0.0, aa = 0.0, bb = 0.0
        for i in 0..<a.count {
            ab += (a[i] - ma) * (b[i] - mb)
            aa += (a[i] - ma) * (a[i] - ma)
            bb += (b[i] - mb) * (b[i] - mb)
        }
        return ab / sqrt(aa * bb)
    }

    /// The near talker's correlation with the output at the processing's own delay
    /// (speexdsp's preprocessor delays by one frame, WebRTC's module by about 13 ms):
    /// the best over 0 to 30 ms.
    static func nearTalkerCorrelation(_ run: Run) -> Double {
        stride(from: 0, through: 480, by: 8).map { lag in
            correlation(Array(run.nearOut[lag...]), Array(run.nearIn[..<(run.nearIn.count - lag)]))
        }.max()!
    }

    /// ERLE floor after 3 s on this path, and the near talker's correlation through
    /// double talk: speexdsp cancels less and keeps the talker whole; WebRTC's module
    /// cancels more and lowers the talker while the far end speaks (bench/echo measures
    /// both on a room).
    func checkCanceller(_ canceller: EchoCanceller, erleFloor: Double, correlationFloor: Double) throws {
        let processor = try VoiceProcessor(echoCancellation: true, noiseSuppression: false, autoGainControl: false,
                                           canceller: canceller)
        let run = try simulate(processor: processor, seconds: 14, delaySamples: 960, leadSamples: 160, nearFrom: 10 * 16_000)
        let c = Self.nearTalkerCorrelation(run)
        print("simulated echo path, \(canceller.name): ERLE \(String(format: "%.1f", run.erle)) dB, near talker through double talk: correlation \(String(format: "%.2f", c))")
        XCTAssertGreaterThan(run.erle, erleFloor, "echo return loss enhancement too low")
        // The near talker must come through double talk, not be cancelled with the echo.
        XCTAssertGreaterThan(c, correlationFloor)
    }

    func testSpeexOnSimulatedPath() throws {
        try checkCanceller(.speex, erleFloor: 25, correlationFloor: 0.6)
    }

    func testWebRTCOnSimulatedPath() throws {
        try checkCanceller(.webrtc, erleFloor: 20, correlationFloor: 0.3)
    }

    func testNoCancellationWithoutEchoCanceller() throws {
        // The control: with the canceller off the echo passes untouched (ERLE ≈ 0 dB),
        // so the figures above are the canceller's doing.
        for canceller in EchoCanceller.allCases {
            let processor = try VoiceProcessor(echoCancellation: false, noiseSuppression: false, autoGainControl: false,
                                               canceller: canceller)
            XCTAssertFalse(processor.isActive)
            let run = try simulate(processor: processor, seconds: 8, delaySamples: 960, leadSamples: 160, nearFrom: 8 * 16_000)
            XCTAssertEqual(run.erle, 0, accuracy: 0.5)
        }
    }

    func testMisalignedReferenceIsWorse() throws {
        // A reference that lags the echo (the lead got the sign wrong) cannot be used:
        // the alignment matters, which is why EchoReference errs early.
        let processor = try VoiceProcessor(echoCancellation: true, noiseSuppression: false, autoGainControl: false,
                                           canceller: .speex)
        let run = try simulate(processor: processor, seconds: 10, delaySamples: 960, leadSamples: -480, nearFrom: 10 * 16_000)
        print("reference 30 ms late: ERLE \(String(format: "%.1f", run.erle)) dB")
        XCTAssertLessThan(run.erle, 12)
    }
}
