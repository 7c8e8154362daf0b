/// The audio file formats libmillis reads and writes, told by the path's extension.
public enum AudioFileFormat: String, Sendable {
    case wav
    case opus

    /// The format of `path`, or an error that names the extensions offered.
    public init(path: String, what: String) throws(MillisError) {
        guard !path.isEmpty else {
            throw MillisError(.invalidArgument, "\(what) path is empty: pass a file path ending in .wav, .opus or .ogg")
        }
        let lower = path.lowercased()
        if lower.hasSuffix(".wav") {
            self = .wav
        } else if lower.hasSuffix(".opus") || lower.hasSuffix(".ogg") {
            self = .opus
        } else {
            throw MillisError(.invalidArgument, "\(what) '\(path)' has an extension libmillis does not know: use .wav (PCM) or .opus / .ogg (Ogg Opus)")
        }
    }

    /// Opens a writer of this format (the file is created now).
    func writer(path: String, channels: Int, sampleRate: Int, title: String) throws(MillisError) -> AudioFileWriter {
        switch self {
        case .wav: return try WAVFileWriter(path: path, channels: channels, sampleRate: sampleRate)
        case .opus: return try OggOpusFileWriter(path: path, channels: channels, sampleRate: sampleRate, title: title)
        }
    }

    static func errnoMessage() -> String {
        String(cString: strerror(errno))
    }
}

#if canImport(Glibc)
import Glibc
#endif
