#if canImport(Glibc)
import Glibc
#endif
import COpus

/// Decodes a whole audio file to what the wire carries: PCM16, 16 kHz, mono.
/// WAV: PCM 8/16/24/32-bit or 32/64-bit float (also WAVE_FORMAT_EXTENSIBLE), any rate
/// and channel count. Ogg Opus: libopusfile (any channel mapping, chained streams).
enum AudioFileReader {
    static let outputRate = 16_000

    static func read(path: String) throws(MillisError) -> [Int16] {
        let format = try AudioFileFormat(path: path, what: "audio input file")
        let (mono, rate): ([Float], Int)
        switch format {
        case .wav: (mono, rate) = try decodeWAV(path: path)
        case .opus: (mono, rate) = try decodeOpus(path: path)
        }
        return try resampled(mono, from: rate, path: path)
    }

    private static func resampled(_ mono: [Float], from rate: Int, path: String) throws(MillisError) -> [Int16] {
        var out: [Float] = []
        if rate == outputRate {
            out = mono
        } else {
            guard let resampler = Resampler(inputRate: rate, outputRate: outputRate) else {
                throw MillisError(.file, "'\(path)' is at \(rate) Hz, which the resampler cannot convert to 16 kHz")
            }
            out.reserveCapacity(resampler.maxOutput(forInput: mono.count) + 64)
            mono.withUnsafeBufferPointer { resampler.process($0, into: &out) }
            // The filter's lookahead: zeros push the file's last samples out.
            let tail = [Float](repeating: 0, count: resampler.inputLatency)
            tail.withUnsafeBufferPointer { resampler.process($0, into: &out) }
            let expected = Int((Double(mono.count) * Double(outputRate) / Double(rate)).rounded())
            if out.count > expected { out.removeLast(out.count - expected) }
        }
        return out.map(SampleFormat.pcm16)
    }

    // MARK: WAV

    private static func decodeWAV(path: String) throws(MillisError) -> ([Float], Int) {
        let bytes = try readAll(path: path)
        func bad(_ why: String) -> MillisError {
            MillisError(.file, "'\(path)' is not a WAV file libmillis can read: \(why)")
        }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        guard bytes.count >= 12, bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8) else {
            throw bad("no RIFF/WAVE header")
        }
        var offset = 12
        var fmt: (tag: Int, channels: Int, rate: Int, bits: Int)?
        var data: Range<Int>?
        while offset + 8 <= bytes.count {
            let id = String(decoding: bytes[offset..<offset + 4], as: UTF8.self)
            let size = u32(offset + 4)
            let body = offset + 8
            let end = min(bytes.count, body + size)
            if id == "fmt " {
                guard end - body >= 16 else { throw bad("its fmt chunk is \(size) bytes") }
                var tag = u16(body)
                if tag == 0xFFFE && end - body >= 26 { tag = u16(body + 24) }  // the sub-format GUID's first field
                fmt = (tag, u16(body + 2), u32(body + 4), u16(body + 14))
            } else if id == "data" {
                // A streamed WAV may say 0 or 0xFFFFFFFF: the data then runs to the end.
                data = body..<(size == 0 || size == 0xFFFF_FFFF ? bytes.count : end)
                break
            }
            offset = body + size + (size & 1)
        }
        guard let fmt else { throw bad("no fmt chunk") }
        guard let data else { throw bad("no data chunk") }
        guard fmt.channels > 0, fmt.rate >= 1000, fmt.rate <= 384_000 else {
            throw bad("\(fmt.channels) channels at \(fmt.rate) Hz")
        }
        let convert: (Int) -> Float
        switch (fmt.tag, fmt.bits) {
        case (1, 8): convert = { Float(Int(bytes[$0]) - 128) / 128 }
        case (1, 16): convert = { Float(Int16(truncatingIfNeeded: u16($0))) / 32768 }
        case (1, 24): convert = { Float(Int32(truncatingIfNeeded: u16($0) << 8 | Int(bytes[$0 + 2]) << 24) >> 8) / 8_388_608 }
        case (1, 32): convert = { Float(Int32(truncatingIfNeeded: u32($0))) / 2_147_483_648 }
        case (3, 32): convert = { Float(bitPattern: UInt32(u32($0))) }
        case (3, 64): convert = { Float(Double(bitPattern: UInt64(u32($0)) | UInt64(u32($0 + 4)) << 32)) }
        default:
            throw bad("format tag \(fmt.tag) with \(fmt.bits)-bit samples (PCM 8/16/24/32-bit and 32/64-bit float are read; convert with `sox in.wav -b 16 out.wav`)")
        }
        let bytesPerSample = fmt.bits / 8
        let frameBytes = bytesPerSample * fmt.channels
        let frames = data.count / frameBytes
        var mono = [Float](repeating: 0, count: frames)
        let scale = 1 / Float(fmt.channels)
        for f in 0..<frames {
            var sum: Float = 0
            let base = data.lowerBound + f * frameBytes
            for c in 0..<fmt.channels { sum += convert(base + c * bytesPerSample) }
            mono[f] = sum * scale
        }
        return (mono, fmt.rate)
    }

    private static func readAll(path: String) throws(MillisError) -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw MillisError(.file, "could not open audio input file '\(path)': \(AudioFileFormat.errnoMessage())")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count {
                if ferror(file) != 0 {
                    throw MillisError(.file, "could not read '\(path)': \(AudioFileFormat.errnoMessage())")
                }
                return bytes
            }
        }
    }

    // MARK: Ogg Opus

    private static func decodeOpus(path: String) throws(MillisError) -> ([Float], Int) {
        var error: Int32 = 0
        guard let file = op_open_file(path, &error) else {
            if access(path, R_OK) != 0 {
                throw MillisError(.file, "could not open audio input file '\(path)': \(AudioFileFormat.errnoMessage())")
            }
            throw MillisError(.file, "'\(path)' is not an Ogg Opus file libopusfile can decode (error \(error))")
        }
        defer { op_free(file) }
        var mono: [Float] = []
        var stereo = [Float](repeating: 0, count: 2 * 5760)
        while true {
            let n = stereo.withUnsafeMutableBufferPointer { op_read_float_stereo(file, $0.baseAddress, Int32($0.count)) }
            if n == 0 { break }
            if n < 0 {
                if n == OP_HOLE { continue }  // a gap in the stream: decoding goes on after it
                throw MillisError(.file, "'\(path)' could not be decoded past sample \(mono.count) (libopusfile error \(n))")
            }
            for i in 0..<Int(n) { mono.append((stereo[2 * i] + stereo[2 * i + 1]) * 0.5) }
        }
        return (mono, 48_000)
    }
}
