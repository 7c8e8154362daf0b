#if canImport(Glibc)
import Glibc
#endif
import CAudio
import CWebRTCAudio

/// The microphone's processing, in 10 ms frames at 16 kHz, by one of two modules
/// (`EchoCanceller`): the WebRTC audio processing module (its echo canceller, noise
/// suppressor and adaptive digital gain control), or speexdsp's echo canceller (an
/// adaptive filter fed with what the speaker played) and preprocessor (noise
/// suppression, gain control, suppression of the echo the filter left). Either does
/// what the browser's getUserMedia does by default.
final class VoiceProcessor {
    static let frameSamples = 160

    let echoCancellation: Bool
    let noiseSuppression: Bool
    let autoGainControl: Bool
    private var webrtc: OpaquePointer?
    private var echo: OpaquePointer?
    private var preprocess: OpaquePointer?
    private var output = [Int16](repeating: 0, count: VoiceProcessor.frameSamples)

    /// Echo-path energy accounting for the ERLE figure: input and output energy of
    /// frames where the speaker played and the far end dominated.
    private(set) var echoInputEnergy: Double = 0
    private(set) var echoOutputEnergy: Double = 0
    private var recent = [(input: Double, output: Double)](repeating: (0, 0), count: 200)
    private var recentNext = 0, recentCount = 0
    private var recentInput = 0.0, recentOutput = 0.0

    /// tailMilliseconds (speexdsp): the longest echo the filter models after alignment
    /// (room reverberation plus alignment error); speexdsp advises a third of the room's
    /// reverberation time, 100 to 200 ms for rooms. A longer tail measured worse
    /// (bench/echo: it converges more slowly).
    init(echoCancellation: Bool, noiseSuppression: Bool, autoGainControl: Bool,
         canceller: EchoCanceller = .webrtc, tailMilliseconds: Int = 120) throws(MillisError) {
        self.echoCancellation = echoCancellation
        self.noiseSuppression = noiseSuppression
        self.autoGainControl = autoGainControl
        guard echoCancellation || noiseSuppression || autoGainControl else { return }
        if canceller == .webrtc {
            webrtc = cwebrtc_apm_create(echoCancellation ? 1 : 0, noiseSuppression ? 1 : 0, autoGainControl ? 1 : 0)
            if webrtc == nil {
                throw MillisError(.internal, "the WebRTC audio processing module could not be set up (out of memory, or a libwebrtc-audio-processing other than 0.3 that does not take its options); the speexdsp canceller (millis_config_set_echo_canceller) works without it")
            }
            return
        }
        let n = Int32(Self.frameSamples)
        var rate: Int32 = 16_000
        if echoCancellation {
            echo = speex_echo_state_init(n, Int32(tailMilliseconds * 16))
            speex_echo_ctl(echo, SPEEX_ECHO_SET_SAMPLING_RATE, &rate)
        }
        preprocess = speex_preprocess_state_init(n, rate)
        // Residual echo suppression rides on the denoiser's gains, so it is on whenever
        // the echo canceller is, even with noise suppression off; then the noise floor
        // is left untouched (suppression 0 dB).
        var denoise: Int32 = (noiseSuppression || echoCancellation) ? 1 : 0
        speex_preprocess_ctl(preprocess, SPEEX_PREPROCESS_SET_DENOISE, &denoise)
        if !noiseSuppression {
            var none: Int32 = 0
            speex_preprocess_ctl(preprocess, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &none)
        }
        var agc: Int32 = autoGainControl ? 1 : 0
        speex_preprocess_ctl(preprocess, SPEEX_PREPROCESS_SET_AGC, &agc)
        if autoGainControl {
            // At most +20 dB: enough for a far talker, not enough to pump room noise.
            var maxGain: Int32 = 20
            speex_preprocess_ctl(preprocess, SPEEX_PREPROCESS_SET_AGC_MAX_GAIN, &maxGain)
        }
        if let echo {
            speex_preprocess_ctl(preprocess, SPEEX_PREPROCESS_SET_ECHO_STATE, UnsafeMutableRawPointer(echo))
        }
    }

    deinit {
        if let webrtc { cwebrtc_apm_destroy(webrtc) }
        if let preprocess { speex_preprocess_state_destroy(preprocess) }
        if let echo { speex_echo_state_destroy(echo) }
    }

    var isActive: Bool { webrtc != nil || preprocess != nil }

    /// Processes one frame in place. `reference`: the 160 samples the speaker played
    /// at the moment this frame was captured (zeros when nothing played).
    func process(_ frame: UnsafeMutableBufferPointer<Int16>, reference: UnsafeBufferPointer<Int16>) {
        precondition(frame.count == Self.frameSamples && reference.count == Self.frameSamples)
        guard echoCancellation else {
            if let webrtc {
                _ = cwebrtc_apm_process(webrtc, frame.baseAddress, nil)
            } else if let preprocess {
                speex_preprocess_run(preprocess, frame.baseAddress)
            }
            return
        }
        let inEnergy = Self.energy(UnsafeBufferPointer(frame))
        let refEnergy = Self.energy(reference)
        if let webrtc {
            // A frame the module refuses (it never has: fixed rate and size) passes as it came.
            _ = cwebrtc_apm_process(webrtc, frame.baseAddress, reference.baseAddress)
        } else if let echo {
            output.withUnsafeMutableBufferPointer { out in
                speex_echo_cancellation(echo, frame.baseAddress, reference.baseAddress, out.baseAddress)
                if let preprocess { speex_preprocess_run(preprocess, out.baseAddress) }
                frame.baseAddress!.update(from: out.baseAddress!, count: Self.frameSamples)
            }
        }
        // Frames where the speaker played audibly: the echo return loss enhancement
        // is measured on them (double talk included; see README for the figure).
        if refEnergy > 1e4 * Double(Self.frameSamples) {
            let outEnergy = Self.energy(UnsafeBufferPointer(frame))
            echoInputEnergy += inEnergy
            echoOutputEnergy += outEnergy
            recentInput += inEnergy - recent[recentNext].input
            recentOutput += outEnergy - recent[recentNext].output
            recent[recentNext] = (inEnergy, outEnergy)
            recentNext = (recentNext + 1) % recent.count
            recentCount = min(recentCount + 1, recent.count)
        }
    }

    /// 10·log10(input / output) over all the frames where the speaker played; nil
    /// before any. Includes the filter's convergence.
    var erleDecibels: Double? {
        guard echoInputEnergy > 0 else { return nil }
        return 10 * log10(echoInputEnergy / max(echoOutputEnergy, 1))
    }

    /// The same over the last 2 s in which the speaker played: how well the canceller
    /// does now.
    var recentERLEDecibels: Double? {
        guard recentCount > 0, recentInput > 0 else { return nil }
        return 10 * log10(recentInput / max(recentOutput, 1))
    }

    static func energy(_ samples: UnsafeBufferPointer<Int16>) -> Double {
        var sum = 0.0
        for s in samples { sum += Double(s) * Double(s) }
        return sum
    }
}
