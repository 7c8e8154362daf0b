import COpus

/// An Ogg Opus file: libopus encodes, libopusenc muxes (pages, pre-skip, granule
/// positions, the OpusHead and OpusTags headers). Voice at 16 kHz input; libopusenc
/// resamples to Opus' 48 kHz itself and records the input rate in the header.
final class OggOpusFileWriter: AudioFileWriter {
    let path: String
    let channels: Int
    private var encoder: OpaquePointer?
    private var wroteAudio = false

    /// 32 kbit/s per channel: transparent for wideband speech.
    static let bitsPerSecondPerChannel: Int32 = 32_000
    /// Half of libopus' default (10): a bridge records hundreds of calls at once. For
    /// speech at this rate the difference is not measurable here (correlation with the
    /// source 0.98 either way); the recording thread's whole cost fell from 120 to
    /// 110 ms of CPU per 12 s stereo conversation (medians of 3).
    static let complexity: Int32 = 5

    init(path: String, channels: Int, sampleRate: Int, title: String) throws(MillisError) {
        self.path = path
        self.channels = channels
        guard let comments = ope_comments_create() else {
            throw MillisError(.noMemory, "libopusenc could not allocate the comments of '\(path)'")
        }
        defer { ope_comments_destroy(comments) }
        ope_comments_add(comments, "ENCODER", "libmillis \(MillisVersion.string)")
        if !title.isEmpty { ope_comments_add(comments, "TITLE", title) }
        var error: Int32 = 0
        guard let enc = ope_encoder_create_file(path, comments, Int32(sampleRate), Int32(channels), 0, &error) else {
            throw MillisError(.file, "could not create '\(path)': \(Self.describe(error))")
        }
        encoder = enc
        _ = copus_set_bitrate(enc, Self.bitsPerSecondPerChannel * Int32(channels))
        _ = copus_set_complexity(enc, Self.complexity)
        _ = copus_set_serialno(enc, Int32.random(in: Int32.min...Int32.max))
    }

    deinit { try? finish() }

    func write(_ samples: UnsafeBufferPointer<Int16>) throws(MillisError) {
        guard let encoder, let base = samples.baseAddress, !samples.isEmpty else { return }
        let rc = ope_encoder_write(encoder, base, Int32(samples.count / channels))
        guard rc == OPE_OK else {
            throw MillisError(.file, "could not write to '\(path)': \(Self.describe(rc))")
        }
        wroteAudio = true
    }

    func finish() throws(MillisError) {
        guard let enc = encoder else { return }
        if !wroteAudio {
            // libopusenc 0.2.1 (Debian 12) aborts draining a stream that never got a
            // sample (its assert 'enc->streams == NULL', fixed upstream later): an
            // empty recording holds one 20 ms frame of silence instead.
            let silence = [Int16](repeating: 0, count: 320 * channels)
            try silence.withUnsafeBufferPointer { (b) throws(MillisError) in try write(b) }
        }
        encoder = nil
        let rc = ope_encoder_drain(enc)
        ope_encoder_destroy(enc)
        guard rc == OPE_OK else {
            throw MillisError(.file, "could not complete '\(path)': \(Self.describe(rc))")
        }
    }

    static func describe(_ code: Int32) -> String {
        if code == OPE_CANNOT_OPEN { return "cannot open the file (missing folder or no permission)" }
        guard let text = ope_strerror(code) else { return "libopusenc error \(code)" }
        return String(cString: text)
    }
}
