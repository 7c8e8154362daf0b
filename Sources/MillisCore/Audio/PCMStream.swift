#if canImport(Glibc)
import Glibc
#endif

/// What the audio engine's threads need of a device: ALSA's PCM calls, with ALSA's
/// conventions (frames, negative errno, poll descriptors). An ALSA PCM (`AlsaPCM`) or
/// an audio file standing in for one (`FilePCM`). Used by one thread at a time.
protocol PCMStream: AnyObject {
    /// How messages name it: "ALSA capture device 'hw:1,0'", "audio input file 'x.wav'".
    var label: String { get }
    var rate: Int { get }
    var channels: Int { get }
    var format: SampleFormat { get }
    var periodFrames: Int { get }
    var bufferFrames: Int { get }
    /// The stream as applications see it in `useraudioready`.
    var description: [(key: String, value: JSONValue)] { get }
    /// Frames read (≥ 0) or a negative errno (-EAGAIN when nothing is ready).
    func read(into buffer: UnsafeMutableRawPointer, frames: Int) -> Int
    /// Frames written (≥ 0) or a negative errno.
    func write(_ buffer: UnsafeRawPointer, frames: Int) -> Int
    /// Brings the stream back after an error; false when it cannot.
    func recover(_ error: Int) -> Bool
    /// Frames queued for playback, or captured and not yet read; nil when unknown.
    func delay() -> Int?
    /// Frames that can be read or written now (negative errno on failure).
    func available() -> Int
    /// Drops what is buffered (barge-in); `silenced` runs once it is gone.
    func dropAndPrepare(silenced: () -> Void)
    func start()
    func pollDescriptors() -> [pollfd]
    /// After a poll on `pollDescriptors()`: lets the stream take note of what it saw.
    func acknowledgePoll(_ fds: UnsafeMutableBufferPointer<pollfd>)
    func close()
}

extension PCMStream {
    var bytesPerFrame: Int { format.bytes * channels }
}

extension AlsaPCM: PCMStream {
    var label: String { "ALSA \(direction.word) device '\(name)'" }
}
