import CAudio

/// libasound, loaded on first device use rather than linked: libmillis.so loads and
/// holds application-audio conversations on a machine without ALSA, and device audio
/// uses the machine's own ALSA (its configuration and plugins).
enum Alsa {
    /// Loads ALSA once per process (later calls answer at once); the error says what
    /// is missing and what to do instead.
    static func load() throws(MillisError) {
        guard caudio_alsa_load() == 0 else { throw MillisError(.audioDevice, unavailableMessage) }
    }

    static var isAvailable: Bool { caudio_alsa_load() == 0 }

    static var unavailableMessage: String {
        "device audio needs ALSA (libasound.so.2), which could not be loaded: \(String(cString: caudio_alsa_load_error())); install libasound2 (Debian: apt install libasound2), or use application audio mode (MILLIS_AUDIO_MODE_APPLICATION)"
    }

    /// This thread's notes since the last clear, emptied.
    static func takeNotes() -> [String] {
        let text = String(cString: caudio_alsa_notes())
        caudio_alsa_notes_clear()
        return text.isEmpty ? [] : text.split(separator: "\n").map(String.init)
    }

    /// The first note without its source location ("cannot find card '0'"): the cause,
    /// where the later lines are the configuration evaluator unwinding.
    static func cause(_ notes: [String]) -> String? {
        guard let first = notes.first else { return nil }
        let parts = first.split(separator: ") ", maxSplits: 1)
        return parts.count == 2 ? String(parts[1]) : first
    }

    /// " (ALSA: cause)" for an error message, or "".
    static func causeSuffix(_ notes: [String]) -> String {
        cause(notes).map { " (ALSA: \($0))" } ?? ""
    }

    /// The text of a negative error code (ALSA's, or strerror's without ALSA).
    static func describe(_ rc: some BinaryInteger) -> String {
        String(cString: caudio_snd_strerror(Int32(truncatingIfNeeded: rc)))
    }
}
