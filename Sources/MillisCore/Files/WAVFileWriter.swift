#if canImport(Glibc)
import Glibc
#endif

/// A RIFF WAVE file of PCM16. The sizes in the header are written at `finish`; a file
/// left unfinished (a crash) still plays, with sizes that a reader must ignore.
final class WAVFileWriter: AudioFileWriter {
    let path: String
    let channels: Int
    let sampleRate: Int
    private var file: UnsafeMutablePointer<FILE>?
    private var dataBytes = 0

    init(path: String, channels: Int, sampleRate: Int) throws(MillisError) {
        self.path = path
        self.channels = channels
        self.sampleRate = sampleRate
        guard let f = fopen(path, "wb") else {
            throw MillisError(.file, "could not create '\(path)': \(AudioFileFormat.errnoMessage())")
        }
        file = f
        try writeHeader()
    }

    deinit { try? finish() }

    private func writeHeader() throws(MillisError) {
        guard let file else { return }
        var h: [UInt8] = []
        func u32(_ v: Int) { for i in 0..<4 { h.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        func u16(_ v: Int) { for i in 0..<2 { h.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        let dataSize = min(dataBytes, Int(UInt32.max) - 36)
        h += Array("RIFF".utf8); u32(36 + dataSize); h += Array("WAVE".utf8)
        h += Array("fmt ".utf8); u32(16); u16(1); u16(channels); u32(sampleRate)
        u32(sampleRate * channels * 2); u16(channels * 2); u16(16)
        h += Array("data".utf8); u32(dataSize)
        fseek(file, 0, SEEK_SET)
        guard fwrite(h, 1, h.count, file) == h.count else {
            throw MillisError(.file, "could not write to '\(path)': \(AudioFileFormat.errnoMessage())")
        }
        fseek(file, 0, SEEK_END)
    }

    func write(_ samples: UnsafeBufferPointer<Int16>) throws(MillisError) {
        guard let file, let base = samples.baseAddress, !samples.isEmpty else { return }
        // WAV is little-endian, as is every machine this library builds for.
        guard fwrite(base, 2, samples.count, file) == samples.count else {
            throw MillisError(.file, "could not write to '\(path)': \(AudioFileFormat.errnoMessage())")
        }
        dataBytes += 2 * samples.count
    }

    func finish() throws(MillisError) {
        guard let f = file else { return }
        defer { file = nil }
        var failure: MillisError?
        do { try writeHeader() } catch { failure = error }
        if fclose(f) != 0 && failure == nil {
            failure = MillisError(.file, "could not complete '\(path)': \(AudioFileFormat.errnoMessage())")
        }
        if let failure { throw failure }
    }
}
