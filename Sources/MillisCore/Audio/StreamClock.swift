/// Where a 16 kHz stream's samples are in time, from noisy observations: ALSA's delay,
/// read at wake-ups that scheduling and sound servers jitter by milliseconds. The echo
/// canceller needs a steady mapping (a reference that jumps by a few samples at every
/// period looks like a new echo path, and the adaptive filter never converges), so
/// observations only nudge the estimate, and replace it when they disagree by more
/// than the tolerance (a restart, an xrun).
struct StreamClock {
    private var index0 = 0
    private var time0: UInt64 = 0
    private(set) var isValid = false
    let toleranceNanoseconds: Int64
    /// How much of each observation's error the estimate absorbs (tracks slow drift).
    let gain: Double

    init(toleranceMilliseconds: Int = 12, gain: Double = 1.0 / 64) {
        toleranceNanoseconds = Int64(toleranceMilliseconds) * 1_000_000
        self.gain = gain
    }

    static let nanosecondsPerSample: Int64 = 62_500

    /// Sample `index` was (or will be) at `time`.
    mutating func observe(index: Int, at time: UInt64) {
        guard isValid else {
            index0 = index
            time0 = time
            isValid = true
            return
        }
        let error = Int64(bitPattern: time &- self.time(of: index))
        if abs(error) > toleranceNanoseconds {
            index0 = index
            time0 = time
        } else {
            time0 = UInt64(Int64(bitPattern: time0) + Int64(Double(error) * gain))
        }
    }

    mutating func reset() { isValid = false }

    func time(of index: Int) -> UInt64 {
        UInt64(Int64(bitPattern: time0) + Int64(index - index0) * Self.nanosecondsPerSample)
    }

    func index(at time: UInt64) -> Int {
        index0 + Int(Int64(bitPattern: time &- time0) / Self.nanosecondsPerSample)
    }
}
