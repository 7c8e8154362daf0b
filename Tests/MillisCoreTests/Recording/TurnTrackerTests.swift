import XCTest
@testable import MillisCore

final class TurnTrackerTests: XCTestCase {
    private static let base: UInt64 = 7_000_000_000_000

    /// `base` plus milliseconds.
    private static func at(_ ms: UInt64) -> UInt64 { base + ms * 1_000_000 }

    private typealias Turn = TurnTracker.Turn

    private func turn(_ number: Int, speechEnd: UInt64?, startAnswering: UInt64?, firstAudio: UInt64?,
                      firstPlayed: UInt64?) -> Turn {
        Turn(number: number, userSpeechEnd: speechEnd.map(Self.at), startAnswering: startAnswering.map(Self.at),
             firstAudio: firstAudio.map(Self.at), firstPlayed: firstPlayed.map(Self.at))
    }

    /// Every key of the turn's JSON, in order, with its literal value ("null" for null).
    private func fields(_ json: String, file: StaticString = #filePath, line: UInt = #line) -> [String: String] {
        guard let value = try? JSONParser.parse(json), case .object(let top) = value else {
            XCTFail("not a JSON object: \(json)", file: file, line: line)
            return [:]
        }
        func text(_ v: JSONValue) -> String {
            switch v {
            case .null: return "null"
            case .number(let n): return n
            default: return "unexpected \(v)"
            }
        }
        XCTAssertEqual(top.map(\.key), ["turn", "user_speech_end", "start_answering", "first_audio", "first_played", "latency_ms"],
                       file: file, line: line)
        var out: [String: String] = [:]
        for m in top where m.key != "latency_ms" { out[m.key] = text(m.value) }
        guard case .object(let latency)? = value["latency_ms"] else {
            XCTFail("latency_ms is not an object: \(json)", file: file, line: line)
            return out
        }
        XCTAssertEqual(latency.map(\.key), ["end_of_speech_to_start_answering", "start_answering_to_first_audio",
                                            "first_audio_to_played", "total"], file: file, line: line)
        for m in latency { out["latency_ms." + m.key] = text(m.value) }
        return out
    }

    func testAWholeTurnAndItsJSON() {
        var tracker = TurnTracker()
        tracker.speechEnded(at: Self.at(1000))
        XCTAssertNil(tracker.startAnswering(at: Self.at(1250)))
        tracker.agentAudio(at: Self.at(1900))
        let done = tracker.played(at: Self.at(1950))
        XCTAssertEqual(done, turn(1, speechEnd: 1000, startAnswering: 1250, firstAudio: 1900, firstPlayed: 1950))

        let json = done.map { fields($0.json(base: Self.base)) }
        XCTAssertEqual(json, [
            "turn": "1",
            "user_speech_end": "1.000000",
            "start_answering": "1.250000",
            "first_audio": "1.900000",
            "first_played": "1.950000",
            "latency_ms.end_of_speech_to_start_answering": "250.000",
            "latency_ms.start_answering_to_first_audio": "650.000",
            "latency_ms.first_audio_to_played": "50.000",
            "latency_ms.total": "950.000",
        ])
    }

    func testJSONKeepsSubMillisecondPrecision() {
        let t = Turn(number: 3, userSpeechEnd: Self.base + 1_234_567, startAnswering: Self.base + 2_234_568,
                     firstAudio: nil, firstPlayed: nil)
        XCTAssertEqual(fields(t.json(base: Self.base)), [
            "turn": "3",
            "user_speech_end": "0.001234",
            "start_answering": "0.002234",
            "first_audio": "null",
            "first_played": "null",
            "latency_ms.end_of_speech_to_start_answering": "1.000",
            "latency_ms.start_answering_to_first_audio": "null",
            "latency_ms.first_audio_to_played": "null",
            "latency_ms.total": "null",
        ])
    }

    func testTheRestOfAnAnswerDoesNotOpenANewTurn() {
        var tracker = TurnTracker()
        _ = tracker.startAnswering(at: Self.at(100))
        tracker.agentAudio(at: Self.at(200))
        XCTAssertNotNil(tracker.played(at: Self.at(250)))
        for ms in stride(from: UInt64(220), through: 2000, by: 20) {
            tracker.agentAudio(at: Self.at(ms))
            XCTAssertNil(tracker.played(at: Self.at(ms + 50)), "\(ms) ms")
        }
        XCTAssertNil(tracker.interrupted(), "idle after a reported turn")
        _ = tracker.startAnswering(at: Self.at(3000))
        tracker.agentAudio(at: Self.at(3100))
        XCTAssertEqual(tracker.played(at: Self.at(3150))?.number, 2)
    }

    func testIdleOrClearBeforePlayedReturnsTheTurnUnplayed() throws {
        var tracker = TurnTracker()
        tracker.speechEnded(at: Self.at(900))
        _ = tracker.startAnswering(at: Self.at(1000))
        tracker.agentAudio(at: Self.at(1200))
        let cut = tracker.interrupted()
        XCTAssertEqual(cut, turn(1, speechEnd: 900, startAnswering: 1000, firstAudio: 1200, firstPlayed: nil))
        let json = fields(try XCTUnwrap(cut).json(base: Self.base))
        XCTAssertEqual(json["first_played"], "null")
        XCTAssertEqual(json["latency_ms.first_audio_to_played"], "null")
        XCTAssertEqual(json["latency_ms.total"], "null")
        XCTAssertEqual(json["latency_ms.start_answering_to_first_audio"], "200.000")
        XCTAssertNil(tracker.interrupted(), "returned once")
        XCTAssertNil(tracker.played(at: Self.at(1300)), "nothing to complete after the clear")

        // Cut before any audio.
        _ = tracker.startAnswering(at: Self.at(2000))
        XCTAssertEqual(tracker.interrupted(), turn(2, speechEnd: nil, startAnswering: 2000, firstAudio: nil, firstPlayed: nil))
    }

    func testStartAnsweringCutsShortTheTurnUnderWay() {
        var tracker = TurnTracker()
        _ = tracker.startAnswering(at: Self.at(100))
        tracker.agentAudio(at: Self.at(150))
        let cut = tracker.startAnswering(at: Self.at(400))
        XCTAssertEqual(cut, turn(1, speechEnd: nil, startAnswering: 100, firstAudio: 150, firstPlayed: nil))
        tracker.agentAudio(at: Self.at(450))
        XCTAssertEqual(tracker.played(at: Self.at(460)), turn(2, speechEnd: nil, startAnswering: 400, firstAudio: 450, firstPlayed: 460))
    }

    func testAudioWithoutStartAnsweringOpensATurn() throws {
        var tracker = TurnTracker()
        tracker.speechEnded(at: Self.at(1000))
        tracker.agentAudio(at: Self.at(2000))
        let done = tracker.played(at: Self.at(2050))
        XCTAssertEqual(done, turn(1, speechEnd: 1000, startAnswering: nil, firstAudio: 2000, firstPlayed: 2050))
        let json = fields(try XCTUnwrap(done).json(base: Self.base))
        XCTAssertEqual(json["start_answering"], "null")
        XCTAssertEqual(json["latency_ms.end_of_speech_to_start_answering"], "null")
        XCTAssertEqual(json["latency_ms.start_answering_to_first_audio"], "null")
        XCTAssertEqual(json["latency_ms.first_audio_to_played"], "50.000")
        XCTAssertEqual(json["latency_ms.total"], "1050.000")
    }

    func testPlayedBeforeTheFirstAudioOrWithoutATurnIsIgnored() {
        var tracker = TurnTracker()
        XCTAssertNil(tracker.played(at: Self.at(10)))
        _ = tracker.startAnswering(at: Self.at(100))
        XCTAssertNil(tracker.played(at: Self.at(150)), "no audio yet")
        tracker.agentAudio(at: Self.at(200))
        XCTAssertNil(tracker.played(at: Self.at(199)), "earlier than the audio")
        XCTAssertEqual(tracker.played(at: Self.at(200))?.firstPlayed, Self.at(200))
    }

    func testSpeechEndBeforeThePreviousTurnStartedIsNotAttributedAgain() {
        var tracker = TurnTracker()
        tracker.speechEnded(at: Self.at(1000))
        _ = tracker.startAnswering(at: Self.at(1200))
        tracker.agentAudio(at: Self.at(1400))
        XCTAssertEqual(tracker.played(at: Self.at(1450))?.userSpeechEnd, Self.at(1000))
        _ = tracker.interrupted()
        // The agent speaks again on its own: no new speech from the user.
        _ = tracker.startAnswering(at: Self.at(5000))
        tracker.agentAudio(at: Self.at(5100))
        XCTAssertEqual(tracker.played(at: Self.at(5150)), turn(2, speechEnd: nil, startAnswering: 5000, firstAudio: 5100, firstPlayed: 5150))
    }

    func testSpeechEndDuringThePreviousTurnBelongsToTheNext() {
        var tracker = TurnTracker()
        tracker.speechEnded(at: Self.at(1000))
        _ = tracker.startAnswering(at: Self.at(1200))
        tracker.agentAudio(at: Self.at(1300))
        _ = tracker.played(at: Self.at(1350))
        // Barge-in: the user talks over the answer and stops at 3 s.
        tracker.speechEnded(at: Self.at(3000))
        XCTAssertNil(tracker.interrupted())
        _ = tracker.startAnswering(at: Self.at(3400))
        tracker.agentAudio(at: Self.at(3600))
        XCTAssertEqual(tracker.played(at: Self.at(3700))?.userSpeechEnd, Self.at(3000))
    }

    func testTurnNumbersIncreaseAndResetRestarts() {
        var tracker = TurnTracker()
        var numbers: [Int] = []
        for k in UInt64(0)..<5 {
            let start = 1000 * k + 100
            _ = tracker.startAnswering(at: Self.at(start))
            tracker.agentAudio(at: Self.at(start + 100))
            if k % 2 == 0 {
                numbers += tracker.played(at: Self.at(start + 150)).map { [$0.number] } ?? []
                _ = tracker.interrupted()
            } else {
                numbers += tracker.interrupted().map { [$0.number] } ?? []
            }
        }
        XCTAssertEqual(numbers, [1, 2, 3, 4, 5])
        tracker.reset()
        tracker.agentAudio(at: Self.at(9000))
        XCTAssertEqual(tracker.played(at: Self.at(9001))?.number, 1)
    }
}
