import CAudio

/// What ALSA knows about: the PCMs an application can offer in a device picker.
public enum AudioDevices {
    /// {"capture": [{"name", "description"}], "playback": [...]}, from ALSA's device
    /// name hints (the same list `arecord -L` / `aplay -L` print).
    public static func listJSON() throws(MillisError) -> String {
        try Alsa.load()
        caudio_alsa_notes_clear()
        final class Found {
            var capture: [JSONValue] = []
            var playback: [JSONValue] = []
        }
        let found = Found()
        let rc = withExtendedLifetime(found) {
            caudio_list_pcms({ name, description, ioid, ctx in
                guard let name, let ctx else { return }
                let found = Unmanaged<Found>.fromOpaque(ctx).takeUnretainedValue()
                let entry = JSONValue.object([
                    ("name", .string(String(cString: name))),
                    // ALSA separates the description's lines with '\n'.
                    ("description", .string(description.map { String(cString: $0) } ?? "")),
                ])
                let io = ioid.map { String(cString: $0) }
                if io == nil || io == "Input" { found.capture.append(entry) }
                if io == nil || io == "Output" { found.playback.append(entry) }
            }, Unmanaged.passUnretained(found).toOpaque())
        }
        guard rc >= 0 else {
            throw MillisError(.audioDevice, "ALSA could not list its devices: \(AlsaPCM.describe(rc))\(Alsa.causeSuffix(Alsa.takeNotes()))")
        }
        var out = ""
        JSONWriter.write(.object([("capture", .array(found.capture)), ("playback", .array(found.playback))]), to: &out)
        return out
    }

    /// Whether both devices of `settings` open (default audio mode's choice): never
    /// without ALSA. A probe that fails is an answer, not an error: what ALSA said of
    /// it is dropped.
    static func canOpen(_ settings: AudioSettings) -> Bool {
        guard Alsa.isAvailable else { return false }
        defer { caudio_alsa_notes_clear() }
        return caudio_probe_pcm(settings.captureDevice, SND_PCM_STREAM_CAPTURE) >= 0
            && caudio_probe_pcm(settings.playbackDevice, SND_PCM_STREAM_PLAYBACK) >= 0
    }
}
