/// Interleaved PCM16 in, a file out. Not thread-safe: one thread writes.
protocol AudioFileWriter: AnyObject {
    var path: String { get }
    var channels: Int { get }
    /// `samples` holds whole frames (channels × frames values, interleaved).
    func write(_ samples: UnsafeBufferPointer<Int16>) throws(MillisError)
    /// Completes the file (encoder drained, header sizes written) and closes it.
    /// Idempotent.
    func finish() throws(MillisError)
}
