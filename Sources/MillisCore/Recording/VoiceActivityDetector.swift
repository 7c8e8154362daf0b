/// Where the user's speech starts and ends, from the audio as sent: an energy detector
/// over 10 ms blocks against an adaptive noise floor, with an onset of 4 blocks (a click
/// is not speech) and a hangover of 300 ms (the gaps between words are not the end).
/// The end is reported once the hangover has passed, with the time the speech really
/// ended. Pure: time comes in with the audio.
struct VoiceActivityDetector {
    enum Event: Equatable {
        case speechStart(at: UInt64)
        case speechEnd(at: UInt64)
    }

    static let blockSamples = 160
    static let onsetBlocks = 4
    static let hangoverBlocks = 30
    /// Speech is at least this loud (dBFS) and this far above the noise floor.
    static let minimumDecibels = -45.0
    static let marginDecibels = 10.0

    private(set) var speaking = false
    private var floorDecibels = -60.0
    private var voicedRun = 0
    private var runStart: UInt64 = 0
    private var silentRun = 0
    private var lastVoicedEnd: UInt64 = 0
    private var partial: [Int16] = []
    private var partialStart: UInt64 = 0

    /// `samples` (16 kHz) whose first sample was captured at `startTime`.
    mutating func feed(_ samples: UnsafeBufferPointer<Int16>, startTime: UInt64) -> [Event] {
        var events: [Event] = []
        var offset = 0
        if !partial.isEmpty {
            let take = min(Self.blockSamples - partial.count, samples.count)
            partial.append(contentsOf: samples[0..<take])
            offset = take
            if partial.count == Self.blockSamples {
                let block = partial
                partial.removeAll(keepingCapacity: true)
                block.withUnsafeBufferPointer { classify($0, at: partialStart, &events) }
            }
        }
        while samples.count - offset >= Self.blockSamples {
            let at = startTime &+ UInt64(offset) * 62_500
            classify(UnsafeBufferPointer(rebasing: samples[offset..<offset + Self.blockSamples]), at: at, &events)
            offset += Self.blockSamples
        }
        if offset < samples.count {
            if partial.isEmpty { partialStart = startTime &+ UInt64(offset) * 62_500 }
            partial.append(contentsOf: samples[offset...])
        }
        return events
    }

    private static func decibels(_ energy: Double, _ count: Int) -> Double {
        let mean = energy / Double(count) / (32768.0 * 32768.0)
        return mean > 1e-10 ? 10 * log10(mean) : -100
    }

    /// Forgets everything (a new conversation).
    mutating func reset() {
        self = VoiceActivityDetector()
    }

    private mutating func classify(_ block: UnsafeBufferPointer<Int16>, at start: UInt64, _ events: inout [Event]) {
        // The block's level, and how many of its five 2 ms parts are loud on their own:
        // a click that merely touches a block lifts its level but fills one part.
        let threshold = max(Self.minimumDecibels, floorDecibels + Self.marginDecibels)
        let partSamples = block.count / 5
        var energy = 0.0
        var loudParts = 0
        for part in 0..<5 {
            var partEnergy = 0.0
            for s in block[(part * partSamples)..<((part + 1) * partSamples)] { partEnergy += Double(s) * Double(s) }
            energy += partEnergy
            if Self.decibels(partEnergy, partSamples) > threshold { loudParts += 1 }
        }
        let decibels = Self.decibels(energy, block.count)
        let voiced = decibels > threshold && loudParts >= 3
        // The floor falls at once and rises slowly (5 dB/s): speech does not lift it
        // much, a noisier room does within seconds.
        floorDecibels = decibels < floorDecibels ? max(decibels, -90) : floorDecibels + 0.05
        let end = start &+ UInt64(block.count) * 62_500
        if voiced {
            silentRun = 0
            lastVoicedEnd = end
            if !speaking {
                if voicedRun == 0 { runStart = start }
                voicedRun += 1
                if voicedRun >= Self.onsetBlocks {
                    speaking = true
                    events.append(.speechStart(at: runStart))
                }
            }
        } else {
            voicedRun = 0
            if speaking {
                silentRun += 1
                if silentRun >= Self.hangoverBlocks {
                    speaking = false
                    silentRun = 0
                    events.append(.speechEnd(at: lastVoicedEnd))
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
