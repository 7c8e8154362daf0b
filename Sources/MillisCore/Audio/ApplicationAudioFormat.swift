/// The audio an application exchanges with the client in application audio mode:
/// what it hands to millis_client_send_audio and receives in the audio callback. The
/// wire always carries 16 kHz PCM16; the client converts.
public struct ApplicationAudioFormat: Sendable, Equatable {
    /// Raw values match `millis_audio_encoding`.
    public enum Encoding: Int32, Sendable {
        case pcm16 = 0
        case muLaw = 1
        case aLaw = 2

        var name: String {
            switch self {
            case .pcm16: return "pcm16"
            case .muLaw: return "mulaw"
            case .aLaw: return "alaw"
            }
        }
    }

    public let encoding: Encoding
    public let sampleRate: Int

    public static let wire = ApplicationAudioFormat(uncheckedEncoding: .pcm16, sampleRate: 16_000)
    public static let pcmRates = [8_000, 16_000, 24_000, 48_000]

    private init(uncheckedEncoding: Encoding, sampleRate: Int) {
        encoding = uncheckedEncoding
        self.sampleRate = sampleRate
    }

    public init(encoding: Encoding, sampleRate: Int) throws(MillisError) {
        switch encoding {
        case .pcm16:
            guard Self.pcmRates.contains(sampleRate) else {
                throw MillisError(.invalidArgument, "PCM16 at \(sampleRate) Hz is not offered: use 8000, 16000, 24000 or 48000 Hz")
            }
        case .muLaw, .aLaw:
            guard sampleRate == 8_000 else {
                throw MillisError(.invalidArgument, "G.711 \(encoding.name) runs at 8000 Hz only, not \(sampleRate) Hz")
            }
        }
        self.encoding = encoding
        self.sampleRate = sampleRate
    }

    /// Bytes per sample: 2 for PCM16, 1 for G.711.
    public var bytesPerSample: Int { encoding == .pcm16 ? 2 : 1 }

    var json: String {
        "{\"source\":\"application\",\"encoding\":\"\(encoding.name)\",\"rate\":\(sampleRate),\"channels\":1}"
    }
}

/// Converts one direction of application audio to or from the wire format. Holds the
/// resampler's history, so one instance per direction per client, used by one thread
/// at a time.
final class ApplicationAudioConverter {
    let format: ApplicationAudioFormat
    private let resampler: Resampler
    private var samples: [Int16] = []
    private var converted: [Int16] = []

    /// toWire: application → 16 kHz PCM16; otherwise the reverse.
    init?(format: ApplicationAudioFormat, toWire: Bool) {
        self.format = format
        let rate = format.sampleRate
        guard let r = Resampler(inputRate: toWire ? rate : 16_000, outputRate: toWire ? 16_000 : rate) else { return nil }
        resampler = r
    }

    /// Application bytes in, wire bytes (PCM16 LE 16 kHz) out.
    func toWire(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        samples.removeAll(keepingCapacity: true)
        switch format.encoding {
        case .pcm16:
            for i in 0..<(input.count / 2) {
                samples.append(Int16(littleEndian: input.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
            }
        case .muLaw:
            for byte in input { samples.append(G711.decodeMuLaw(byte)) }
        case .aLaw:
            for byte in input { samples.append(G711.decodeALaw(byte)) }
        }
        converted.removeAll(keepingCapacity: true)
        samples.withUnsafeBufferPointer { resampler.process($0, into: &converted) }
        return converted.withUnsafeBytes { Array($0) }
    }

    /// Audio went in since the last flush or reset (so the filter holds some back).
    private var holding = false

    /// Wire bytes in, application bytes out.
    func fromWire(_ pcm: [UInt8]) -> [UInt8] {
        samples.removeAll(keepingCapacity: true)
        pcm.withUnsafeBytes { raw in
            for i in 0..<(raw.count / 2) {
                samples.append(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
            }
        }
        holding = holding || !samples.isEmpty
        return convertSamples()
    }

    /// The end of a stretch of audio (the agent finished): pushes out what the
    /// resampler's lookahead still holds (a few ms), which would otherwise wait for the
    /// next answer. Empty when nothing is held.
    func flush() -> [UInt8] {
        guard holding, resampler.inputLatency > 0 else { return [] }
        holding = false
        samples = [Int16](repeating: 0, count: resampler.inputLatency)
        let tail = convertSamples()
        resampler.reset()
        return tail
    }

    /// Barge-in: what the filter holds is dropped with the rest.
    func reset() {
        holding = false
        resampler.reset()
    }

    private func convertSamples() -> [UInt8] {
        converted.removeAll(keepingCapacity: true)
        samples.withUnsafeBufferPointer { resampler.process($0, into: &converted) }
        switch format.encoding {
        case .pcm16:
            return converted.withUnsafeBytes { Array($0) }
        case .muLaw:
            return converted.map(G711.encodeMuLaw)
        case .aLaw:
            return converted.map(G711.encodeALaw)
        }
    }
}
