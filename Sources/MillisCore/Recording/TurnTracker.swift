/// The latency of each agent turn, from four moments: the end of the user's speech
/// (local VAD), `start_answering`, the first agent audio frame received, and its first
/// sample written to the speaker (handed to the application in application mode).
/// Pure: the network loop reports the moments, in monotonic nanoseconds.
struct TurnTracker {
    struct Turn: Equatable {
        var number: Int
        var userSpeechEnd: UInt64?
        var startAnswering: UInt64?
        var firstAudio: UInt64?
        var firstPlayed: UInt64?

        /// The turn as JSON, times in seconds since `base` (see millis_turn_cb).
        func json(base: UInt64) -> String {
            func at(_ t: UInt64?) -> JSONValue {
                guard let t else { return .null }
                return .number(Seconds.format(Int64(bitPattern: t &- base)))
            }
            func ms(_ from: UInt64?, _ to: UInt64?) -> JSONValue {
                guard let from, let to else { return .null }
                return .number(Seconds.formatMilliseconds(Int64(bitPattern: to &- from)))
            }
            var out = ""
            JSONWriter.write(.object([
                ("turn", .number("\(number)")),
                ("user_speech_end", at(userSpeechEnd)),
                ("start_answering", at(startAnswering)),
                ("first_audio", at(firstAudio)),
                ("first_played", at(firstPlayed)),
                ("latency_ms", .object([
                    ("end_of_speech_to_start_answering", ms(userSpeechEnd, startAnswering)),
                    ("start_answering_to_first_audio", ms(startAnswering, firstAudio)),
                    ("first_audio_to_played", ms(firstAudio, firstPlayed)),
                    ("total", ms(userSpeechEnd, firstPlayed)),
                ])),
            ]), to: &out)
            return out
        }
    }

    private var current: Turn?
    /// The current turn has been reported (its first sample played); the rest of its
    /// answer belongs to it until the agent turns idle or answers again.
    private var reported = false
    private var count = 0
    private var lastSpeechEnd: UInt64?
    /// Speech that ended before this belongs to an earlier turn.
    private var previousTurnStart: UInt64 = 0

    mutating func speechEnded(at time: UInt64) {
        lastSpeechEnd = time
    }

    /// `start_answering`: a new turn (an open one is returned, cut short).
    mutating func startAnswering(at time: UInt64) -> Turn? {
        let unfinished = interrupted()
        open(at: time, startAnswering: time)
        return unfinished
    }

    /// An agent audio frame arrived.
    mutating func agentAudio(at time: UInt64) {
        if current == nil { open(at: time, startAnswering: nil) }
        if current?.firstAudio == nil { current?.firstAudio = time }
    }

    /// The first sample of an answer reached the speaker: completes the turn.
    mutating func played(at time: UInt64) -> Turn? {
        guard !reported, var turn = current, let first = turn.firstAudio, time >= first else { return nil }
        turn.firstPlayed = time
        current = turn
        reported = true
        return turn
    }

    /// The agent turned idle, was cleared, or the conversation ended: the turn is over.
    /// Returns it if it was never reported (cut short before its audio played).
    mutating func interrupted() -> Turn? {
        defer {
            current = nil
            reported = false
        }
        return reported ? nil : current
    }

    mutating func reset() {
        self = TurnTracker()
    }

    private mutating func open(at time: UInt64, startAnswering: UInt64?) {
        count += 1
        reported = false
        var speechEnd: UInt64?
        if let end = lastSpeechEnd, end >= previousTurnStart, end <= time { speechEnd = end }
        current = Turn(number: count, userSpeechEnd: speechEnd, startAnswering: startAnswering)
        previousTurnStart = time
    }
}
