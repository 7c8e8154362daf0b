#if canImport(Glibc)
import Glibc
#endif
import MillisCore

// Device audio, application audio formats and the analysers of include/millis.h.

@_cdecl("millis_config_set_audio_devices")
public func millis_config_set_audio_devices(_ cfg: UnsafeMutableRawPointer?, _ capture: UnsafePointer<CChar>?,
                                            _ playback: UnsafePointer<CChar>?) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in
        try config.setAudioDevices(capture: try readOptionalString(capture, "capture device"),
                                   playback: try readOptionalString(playback, "playback device"))
    }
}

@_cdecl("millis_config_set_audio_processing")
public func millis_config_set_audio_processing(_ cfg: UnsafeMutableRawPointer?, _ echoCancellation: Int32,
                                               _ noiseSuppression: Int32, _ autoGainControl: Int32) -> Int32 {
    ConfigHandle.update(cfg) { config in
        config.setAudioProcessing(echoCancellation: echoCancellation != 0, noiseSuppression: noiseSuppression != 0,
                                  autoGainControl: autoGainControl != 0)
    }
}

@_cdecl("millis_config_set_echo_canceller")
public func millis_config_set_echo_canceller(_ cfg: UnsafeMutableRawPointer?, _ canceller: Int32) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in
        guard let value = EchoCanceller(rawValue: canceller) else {
            throw MillisError(.invalidArgument, "echo canceller \(canceller) is not one: use MILLIS_ECHO_CANCELLER_WEBRTC (0, the default) or MILLIS_ECHO_CANCELLER_SPEEX (1)")
        }
        config.setEchoCanceller(value)
    }
}

@_cdecl("millis_config_set_audio_period_ms")
public func millis_config_set_audio_period_ms(_ cfg: UnsafeMutableRawPointer?, _ ms: UInt32) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in try config.setAudioPeriodMilliseconds(Int(ms)) }
}

@_cdecl("millis_config_set_playout_prebuffer_ms")
public func millis_config_set_playout_prebuffer_ms(_ cfg: UnsafeMutableRawPointer?, _ ms: UInt32) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in try config.setPlayoutPrebufferMilliseconds(Int(ms)) }
}

@_cdecl("millis_config_set_application_audio_format")
public func millis_config_set_application_audio_format(_ cfg: UnsafeMutableRawPointer?, _ encoding: Int32,
                                                       _ sampleRate: UInt32) -> Int32 {
    ConfigHandle.update(cfg) { config throws(MillisError) in
        guard let value = ApplicationAudioFormat.Encoding(rawValue: encoding) else {
            throw MillisError(.invalidArgument, "encoding \(encoding) is not a millis_audio_encoding (0 PCM16, 1 µ-law, 2 A-law)")
        }
        config.applicationAudioFormat = try ApplicationAudioFormat(encoding: value, sampleRate: Int(sampleRate))
    }
}

/// Each thread's message of its last failed listing (millis_audio_devices_last_error).
private let audioDevicesLastError = LastError()

@_cdecl("millis_audio_devices_json")
public func millis_audio_devices_json() -> UnsafeMutablePointer<CChar>? {
    do {
        return mallocCString(try AudioDevices.listJSON())
    } catch {
        audioDevicesLastError.set(error.message)
        return nil
    }
}

@_cdecl("millis_audio_devices_last_error")
public func millis_audio_devices_last_error() -> UnsafePointer<CChar>? {
    audioDevicesLastError.pointer
}

@_cdecl("millis_audio_test")
public func millis_audio_test(_ cfg: UnsafeMutableRawPointer?, _ durationMs: UInt32,
                              _ report: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guard let handle = ConfigHandle.from(cfg) else { return MillisStatus.invalidArgument.rawValue }
    report?.pointee = nil
    return handle.lastError.capture { () throws(MillisError) in
        guard let report else {
            throw MillisError(.invalidArgument, "report is NULL: pass the address of a char * that receives the report")
        }
        let json = try AudioTest.run(handle.config.audio, durationMilliseconds:
                                        durationMs == 0 ? AudioTest.defaultDurationMilliseconds : Int(durationMs),
                                     wireFrameMilliseconds: handle.config.frameMilliseconds)
        report.pointee = mallocCString(json)
    }
}

@_cdecl("millis_client_audio_mode")
public func millis_client_audio_mode(_ c: UnsafeRawPointer?) -> Int32 {
    ClientHandle.from(c)?.core.audioMode.rawValue ?? AudioMode.default.rawValue
}

// MARK: Analysers

/// The object behind a `millis_analyser *`: owned by its client's handle.
final class AnalyserHandle {
    let analyser: Analyser
    let lastError = LastError()
    /// A client's analyser: the process that created the client (0: a standalone one).
    private let clientProcess: pid_t

    init(_ analyser: Analyser, clientProcess: pid_t = 0) {
        self.analyser = analyser
        self.clientProcess = clientProcess
    }

    /// nil for NULL and, in a child made by fork(), for an analyser of the parent's
    /// client: the parent's network thread feeds it under its lock, which may have
    /// been held at the fork. Such an analyser then behaves as NULL does.
    static func from(_ pointer: UnsafeRawPointer?) -> AnalyserHandle? {
        guard let handle = pointer.map({ Unmanaged<AnalyserHandle>.fromOpaque($0).takeUnretainedValue() }) else {
            return nil
        }
        guard handle.clientProcess == 0 || handle.clientProcess == getpid() else { return nil }
        return handle
    }

    var pointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
}

@_cdecl("millis_client_agent_analyser")
public func millis_client_agent_analyser(_ c: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    ClientHandle.local(c)?.agentAnalyserHandle.pointer
}

@_cdecl("millis_client_user_analyser")
public func millis_client_user_analyser(_ c: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    ClientHandle.local(c)?.userAnalyserHandle.pointer
}

@_cdecl("millis_analyser_last_error")
public func millis_analyser_last_error(_ a: UnsafeRawPointer?) -> UnsafePointer<CChar>? {
    AnalyserHandle.from(a)?.lastError.pointer
}

private func analyserCall(_ a: UnsafeMutableRawPointer?, _ body: (Analyser) throws(MillisError) -> Void) -> Int32 {
    guard let handle = AnalyserHandle.from(a) else { return MillisStatus.invalidArgument.rawValue }
    return handle.lastError.capture { () throws(MillisError) in try body(handle.analyser) }
}

@_cdecl("millis_analyser_set_fft_size")
public func millis_analyser_set_fft_size(_ a: UnsafeMutableRawPointer?, _ size: UInt32) -> Int32 {
    analyserCall(a) { analyser throws(MillisError) in try analyser.setFFTSize(Int(size)) }
}

@_cdecl("millis_analyser_fft_size")
public func millis_analyser_fft_size(_ a: UnsafeRawPointer?) -> UInt32 {
    UInt32(AnalyserHandle.from(a)?.analyser.fftSize ?? 0)
}

@_cdecl("millis_analyser_frequency_bin_count")
public func millis_analyser_frequency_bin_count(_ a: UnsafeRawPointer?) -> UInt32 {
    UInt32(AnalyserHandle.from(a)?.analyser.frequencyBinCount ?? 0)
}

@_cdecl("millis_analyser_set_decibel_range")
public func millis_analyser_set_decibel_range(_ a: UnsafeMutableRawPointer?, _ min: Double, _ max: Double) -> Int32 {
    analyserCall(a) { analyser throws(MillisError) in try analyser.setDecibelRange(min: min, max: max) }
}

@_cdecl("millis_analyser_min_decibels")
public func millis_analyser_min_decibels(_ a: UnsafeRawPointer?) -> Double {
    AnalyserHandle.from(a)?.analyser.minDecibels ?? 0
}

@_cdecl("millis_analyser_max_decibels")
public func millis_analyser_max_decibels(_ a: UnsafeRawPointer?) -> Double {
    AnalyserHandle.from(a)?.analyser.maxDecibels ?? 0
}

@_cdecl("millis_analyser_set_smoothing_time_constant")
public func millis_analyser_set_smoothing_time_constant(_ a: UnsafeMutableRawPointer?, _ value: Double) -> Int32 {
    analyserCall(a) { analyser throws(MillisError) in try analyser.setSmoothingTimeConstant(value) }
}

@_cdecl("millis_analyser_smoothing_time_constant")
public func millis_analyser_smoothing_time_constant(_ a: UnsafeRawPointer?) -> Double {
    AnalyserHandle.from(a)?.analyser.smoothingTimeConstant ?? 0
}

/// The shape of the four getters: NULL, empty or a count no buffer can have (above
/// SSIZE_MAX) gives 0, else what the analyser wrote.
private func fill<T>(_ a: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<T>?, _ count: UInt,
                     _ get: (Analyser, UnsafeMutableBufferPointer<T>) -> Int) -> UInt {
    guard let analyser = AnalyserHandle.from(a)?.analyser, let out, let n = Int(exactly: count), n > 0 else { return 0 }
    return UInt(get(analyser, UnsafeMutableBufferPointer(start: out, count: n)))
}

@_cdecl("millis_analyser_get_byte_frequency_data")
public func millis_analyser_get_byte_frequency_data(_ a: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<UInt8>?, _ count: UInt) -> UInt {
    fill(a, out, count) { $0.getByteFrequencyData($1) }
}

@_cdecl("millis_analyser_get_float_frequency_data")
public func millis_analyser_get_float_frequency_data(_ a: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<Float>?, _ count: UInt) -> UInt {
    fill(a, out, count) { $0.getFloatFrequencyData($1) }
}

@_cdecl("millis_analyser_get_byte_time_domain_data")
public func millis_analyser_get_byte_time_domain_data(_ a: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<UInt8>?, _ count: UInt) -> UInt {
    fill(a, out, count) { $0.getByteTimeDomainData($1) }
}

@_cdecl("millis_analyser_get_float_time_domain_data")
public func millis_analyser_get_float_time_domain_data(_ a: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<Float>?, _ count: UInt) -> UInt {
    fill(a, out, count) { $0.getFloatTimeDomainData($1) }
}

@_cdecl("millis_analyser_rms_dbfs")
public func millis_analyser_rms_dbfs(_ a: UnsafeRawPointer?) -> Double {
    AnalyserHandle.from(a)?.analyser.rmsDBFS ?? -120
}

@_cdecl("millis_analyser_write_pcm16")
public func millis_analyser_write_pcm16(_ a: UnsafeMutableRawPointer?, _ pcm: UnsafePointer<Int16>?, _ count: UInt) -> Int32 {
    guard let analyser = AnalyserHandle.from(a)?.analyser else { return MillisStatus.invalidArgument.rawValue }
    guard let pcm, let n = Int(exactly: count) else {
        return count == 0 ? MillisStatus.ok.rawValue : MillisStatus.invalidArgument.rawValue
    }
    analyser.write(UnsafeBufferPointer(start: pcm, count: n))
    return MillisStatus.ok.rawValue
}

@_cdecl("millis_analyser_create")
public func millis_analyser_create(_ sampleRate: Double) -> UnsafeMutableRawPointer? {
    guard sampleRate.isFinite, sampleRate > 0 else { return nil }
    return Unmanaged.passRetained(AnalyserHandle(Analyser(sampleRate: sampleRate))).toOpaque()
}

@_cdecl("millis_analyser_destroy")
public func millis_analyser_destroy(_ a: UnsafeMutableRawPointer?) {
    guard let a else { return }
    Unmanaged<AnalyserHandle>.fromOpaque(a).release()
}
