import CAudio

/// What ALSA knows about: the PCMs an application can offer in a device picker.
public enum AudioDevices {
    /// {"capture": [{"name", "description"}], "playback": [...]}, from ALSA's device
    /// name hints (the same list `arecord -L` / `aplay -L` print).
    public static func listJSON() throws(MillisError) -> String {
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
            throw MillisError(.audioDevice, "ALSA could not list its devices: \(AlsaPCM.describe(rc))")
        }
        var out = ""
        JSONWriter.write(.object([("capture", .array(found.capture)), ("playback", .array(found.playback))]), to: &out)
        return out
    }

    /// Whether both devices of `settings` open (default audio mode's choice).
    static func canOpen(_ settings: AudioSettings) -> Bool {
        caudio_probe_pcm(settings.captureDevice, SND_PCM_STREAM_CAPTURE) >= 0
            && caudio_probe_pcm(settings.playbackDevice, SND_PCM_STREAM_PLAYBACK) >= 0
    }
}
