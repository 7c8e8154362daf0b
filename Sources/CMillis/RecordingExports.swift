import MillisCore

// Audio files as devices, and recordings (include/millis.h: "Audio files as devices",
// "Recording").

@_cdecl("millis_config_set_audio_input_file")
public func millis_config_set_audio_input_file(_ cfg: UnsafeMutableRawPointer?, _ path: UnsafePointer<CChar>?,
                                               _ pacing: Int32) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in
        guard pacing == 0 || pacing == 1 else {
            throw MillisError(.invalidArgument, "file pacing \(pacing) is unknown: use MILLIS_FILE_REALTIME (0) or MILLIS_FILE_FAST (1)")
        }
        try config.setAudioInputFile(try readOptionalString(path, "input file path"), fast: pacing == 1)
    }
}

@_cdecl("millis_config_set_audio_output_file")
public func millis_config_set_audio_output_file(_ cfg: UnsafeMutableRawPointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in
        try config.setAudioOutputFile(try readOptionalString(path, "output file path"))
    }
}

/// The flags millis_record_flags defines.
private func isMono(_ flags: UInt32) throws(MillisError) -> Bool {
    guard flags & ~1 == 0 else {
        throw MillisError(.invalidArgument, "recording flags 0x\(String(flags, radix: 16)) hold unknown bits: use MILLIS_RECORD_STEREO (0) or MILLIS_RECORD_MONO (1)")
    }
    return flags == 1
}

@_cdecl("millis_config_set_recording")
public func millis_config_set_recording(_ cfg: UnsafeMutableRawPointer?, _ path: UnsafePointer<CChar>?, _ flags: UInt32) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in
        try config.setRecording(try readOptionalString(path, "recording path"), mono: try isMono(flags))
    }
}

@_cdecl("millis_client_start_recording")
public func millis_client_start_recording(_ c: UnsafeMutableRawPointer?, _ path: UnsafePointer<CChar>?, _ flags: UInt32) -> Int32 {
    ClientHandle.run(c) { handle in handle.call { () throws(MillisError) in
        try handle.core.startRecording(path: try readString(path, "recording path"), mono: try isMono(flags))
    } }
}

@_cdecl("millis_client_stop_recording")
public func millis_client_stop_recording(_ c: UnsafeMutableRawPointer?) -> Int32 {
    ClientHandle.run(c) { handle in handle.call { () throws(MillisError) in try handle.core.stopRecording() } }
}
