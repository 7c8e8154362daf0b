import Foundation
import XCTest
@testable import MillisCore

#if canImport(Glibc)
import Glibc
#endif

final class ConversationTimelineTests: ScratchDirectoryTestCase {
    private let ms: UInt64 = 1_000_000

    private func bytes(_ samples: [Int16]) -> [UInt8] { TestFiles.pcm16(samples) }

    /// The end line's time is the real clock's: wait until it has passed `time`.
    private func waitUntil(_ time: UInt64) {
        while MonotonicClock.now() <= time { usleep(5_000) }
    }

    private func parsedLines(_ path: String) throws -> [JSONValue] {
        let text = String(decoding: try TestFiles.read(path), as: UTF8.self)
        return try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }

    func testAConversationAsTimelineLines() throws {
        let timeline = ConversationTimeline()
        let begin = MonotonicClock.now()
        timeline.begin(now: begin)
        let recorder = try Recorder(path: dir.path("c.wav"), mono: false, title: "timeline")
        let t0 = recorder.startedAt
        timeline.attach(recorder, now: t0)
        XCTAssertTrue(timeline.recorder === recorder)

        let options = try StartOptions(agentId: "A1")
        timeline.sentText(options.initiateMessage(publicKey: "secret"), now: t0 + 1 * ms)
        timeline.receivedText(#"{"method":"onready","payload":{"session_id":"S1"}}"#, now: t0 + 2 * ms)
        timeline.receivedText("not json", now: t0 + 3 * ms)

        // The user: 100 ms of silence, 300 ms of speech, 400 ms of silence, in 20 ms frames
        // sent as their last sample is captured.
        let speech = TestFiles.int16([Double](repeating: 0, count: 1600) + TestFiles.tone(frequency: 440, dBFS: -20, count: 4800)
            + [Double](repeating: 0, count: 6400))
        for k in 0..<40 {
            timeline.sentAudio(bytes(Array(speech[(320 * k)..<(320 * k + 320)])), now: t0 + UInt64(k + 1) * 20 * ms, analyse: true)
        }
        XCTAssertNil(timeline.event(.agentState(.prepareAnswer), now: t0 + 810 * ms))
        let agent = [Int16](repeating: -7, count: 1600)
        let turn = try XCTUnwrap(timeline.agentAudio(bytes(agent), now: t0 + 900 * ms, playedNow: true))
        XCTAssertEqual(turn, TurnTracker.Turn(number: 1, userSpeechEnd: t0 + 400 * ms, startAnswering: t0 + 810 * ms,
                                              firstAudio: t0 + 900 * ms, firstPlayed: t0 + 900 * ms))
        let reported = try JSONParser.parse(timeline.report(turn, now: t0 + 900 * ms, forApplication: true)!)
        XCTAssertEqual(reported["user_speech_end"], .number(Seconds.format(Int64(t0 + 400 * ms - begin))),
                       "the application's JSON counts from the conversation's start")
        XCTAssertEqual(reported["latency_ms"]?["total"], .number("500.000"))
        XCTAssertNil(timeline.event(.transcript("hello there", isFinal: true), now: t0 + 950 * ms))
        XCTAssertNil(timeline.event(.close(code: 1000, reason: "bye"), now: t0 + 960 * ms), "the turn was reported")
        XCTAssertTrue(timeline.detach() === recorder)
        XCTAssertNil(timeline.recorder)
        // Nothing more reaches the file once detached.
        timeline.sentText(#"{"method":"late"}"#, now: t0 + 970 * ms)
        waitUntil(t0 + 970 * ms)
        XCTAssertNil(recorder.finishAndWait())

        let text = String(decoding: try TestFiles.read(recorder.timelinePath), as: UTF8.self)
        XCTAssertFalse(text.contains("secret"), text)
        let lines = try parsedLines(recorder.timelinePath)
        let kinds = lines.map { line -> String in
            let type = line["type"]?.stringValue ?? "?"
            return type + ((line["event"]?.stringValue).map { ":" + $0 } ?? "")
        }
        XCTAssertEqual(kinds, ["recording", "send", "recv", "recv", "vad:speech_start", "vad:speech_end",
                               "event:agent_state", "turn", "event:transcript", "event:close", "end"])
        guard lines.count == 11 else { return }

        let header = lines[0]
        XCTAssertEqual(header["t"], .number("0.000000"))
        XCTAssertEqual(header["audio"], .string("c.wav"))
        XCTAssertEqual(header["format"], .string("wav"))
        XCTAssertEqual(header["sample_rate"], .number("16000"))
        XCTAssertEqual(header["channels"], .number("2"))
        XCTAssertEqual(header["layout"], .string("user-left agent-right"))
        XCTAssertEqual(header["version"], .string(MillisVersion.string))
        XCTAssertEqual(header["conversation_offset"], .number(Seconds.format(Int64(t0 - begin))))

        XCTAssertEqual(lines[1]["t"], .number("0.001000"))
        XCTAssertEqual(lines[1]["method"], .string("initiate"))
        XCTAssertEqual(lines[1]["message"]?["data"]?["public_key"], .string("<redacted>"))
        XCTAssertEqual(lines[1]["message"]?["data"]?["agent"]?["agent_id"], .string("A1"))
        XCTAssertEqual(lines[2]["method"], .string("onready"))
        XCTAssertEqual(lines[2]["message"]?["payload"]?["session_id"], .string("S1"))
        XCTAssertEqual(lines[3]["method"], .null)
        XCTAssertEqual(lines[3]["text"], .string("not json"))

        XCTAssertEqual(lines[4]["side"], .string("user"))
        XCTAssertEqual(lines[4]["at"], .number("0.100000"))
        XCTAssertEqual(lines[4]["t"], .number("0.140000"), "reported with the frame that completed the onset")
        XCTAssertEqual(lines[5]["at"], .number("0.400000"))
        XCTAssertEqual(lines[5]["t"], .number("0.700000"), "reported once the hangover passed")

        XCTAssertEqual(lines[6]["state"], .string("prepare_answer"))
        XCTAssertEqual(lines[7]["turn"], .number("1"))
        XCTAssertEqual(lines[7]["user_speech_end"], .number("0.400000"), "on the recording's clock")
        XCTAssertEqual(lines[7]["start_answering"], .number("0.810000"))
        XCTAssertEqual(lines[7]["first_played"], .number("0.900000"))
        XCTAssertEqual(lines[7]["latency_ms"]?["end_of_speech_to_start_answering"], .number("410.000"))
        XCTAssertEqual(lines[8]["text"], .string("hello there"))
        XCTAssertEqual(lines[8]["is_final"], .bool(true))
        XCTAssertEqual(lines[9]["code"], .number("1000"))
        XCTAssertEqual(lines[9]["reason"], .string("bye"))
        XCTAssertEqual(lines[10]["user_samples"], .number("12800"))
        XCTAssertEqual(lines[10]["agent_samples"], .number("1600"))

        let times = lines.map { $0["t"]?.doubleValue ?? -1 }
        XCTAssertEqual(times.filter { $0 < 0 }, [], "every line has a time")
        XCTAssertEqual(times, times.sorted(), "t never decreases")

        // The audio: the user's frames from sample 0, the agent's answer where it played.
        let wav = try TestFiles.readWAV(dir.path("c.wav"))
        XCTAssertEqual(wav.channels, 2)
        XCTAssertNil(TestFiles.mismatch(wav.channel(0), speech + [Int16](repeating: 0, count: 16_000 - speech.count)))
        XCTAssertNil(TestFiles.mismatch(wav.channel(1), [Int16](repeating: 0, count: 14_400) + agent))
    }

    func testHeaderOfAMonoOggRecordingStartedBeforeTheConversation() throws {
        let recorder = try Recorder(path: dir.path("m.ogg"), mono: true, title: "")
        let timeline = ConversationTimeline()
        timeline.begin(now: recorder.startedAt + 5 * ms)
        timeline.attach(recorder, now: recorder.startedAt + 6 * ms)
        // Some audio: an Ogg Opus recording without any is RecorderTests.testOpusRecordingStoppedAtOnce.
        timeline.sentAudio([UInt8](repeating: 0, count: 640), now: recorder.startedAt + 20 * ms, analyse: true)
        _ = timeline.detach()
        XCTAssertNil(recorder.finishAndWait())
        let header = try XCTUnwrap(try parsedLines(recorder.timelinePath).first)
        XCTAssertEqual(recorder.timelinePath, dir.path("m.jsonl"))
        XCTAssertEqual(header["audio"], .string("m.ogg"))
        XCTAssertEqual(header["format"], .string("opus"))
        XCTAssertEqual(header["channels"], .number("1"))
        XCTAssertEqual(header["layout"], .string("mixed"))
        XCTAssertEqual(header["conversation_offset"], .number("0.000000"))
        XCTAssertEqual(header["t"], .number("0.000000"))
    }

    func testAnAnswerInABurstIsRecordedWhereItWouldHavePlayed() throws {
        let timeline = ConversationTimeline()
        let recorder = try Recorder(path: dir.path("burst.wav"), mono: false, title: "")
        let t0 = recorder.startedAt
        timeline.begin(now: t0)
        timeline.attach(recorder, now: t0)
        // Three 200 ms frames arrive together at 1 s: they play one after the other.
        for k in 0..<3 {
            _ = timeline.agentAudio(bytes([Int16](repeating: Int16(k + 1), count: 3200)), now: t0 + 1000 * ms, playedNow: true)
        }
        // A barge-in at 1.3 s: what follows plays from then.
        _ = timeline.cleared(now: t0 + 1300 * ms)
        _ = timeline.agentAudio(bytes([Int16](repeating: 9, count: 1600)), now: t0 + 2500 * ms, playedNow: true)
        _ = timeline.detach()
        XCTAssertNil(recorder.finishAndWait())
        let right = try TestFiles.readWAV(dir.path("burst.wav")).channel(1)
        let expected = [Int16](repeating: 0, count: 16_000) + [Int16](repeating: 1, count: 3200)
            + [Int16](repeating: 2, count: 3200) + [Int16](repeating: 3, count: 3200)
            + [Int16](repeating: 0, count: 40_000 - 25_600) + [Int16](repeating: 9, count: 1600)
        XCTAssertNil(TestFiles.mismatch(right, expected))
    }

    func testWithoutARecorderNothingIsWrittenAndTurnsStillComplete() throws {
        let timeline = ConversationTimeline()
        timeline.begin(now: 1_000 * ms)
        timeline.sentText(#"{"method":"initiate","data":{"public_key":"secret"}}"#, now: 1_001 * ms)
        XCTAssertNil(timeline.event(.agentState(.prepareAnswer), now: 1_100 * ms))
        XCTAssertNil(timeline.agentAudio([0, 0], now: 1_200 * ms, playedNow: false))
        let turn = try XCTUnwrap(timeline.played(at: 1_250 * ms))
        let json = try JSONParser.parse(timeline.report(turn, now: 1_250 * ms, forApplication: true)!)
        XCTAssertEqual(json["start_answering"], .number("0.100000"))
        XCTAssertEqual(json["first_played"], .number("0.250000"))
        XCTAssertEqual(json["user_speech_end"], .null)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.url.path), [])
    }

    func testIdleBeforePlayedEndsTheTurnUnplayed() throws {
        let timeline = ConversationTimeline()
        timeline.begin(now: 0)
        _ = timeline.event(.agentState(.prepareAnswer), now: 100 * ms)
        _ = timeline.agentAudio([1, 0], now: 200 * ms, playedNow: false)
        let cut = try XCTUnwrap(timeline.event(.agentState(.idle), now: 300 * ms))
        XCTAssertEqual(cut.firstAudio, 200 * ms)
        XCTAssertNil(cut.firstPlayed)
        _ = timeline.event(.agentState(.prepareAnswer), now: 400 * ms)
        XCTAssertEqual(timeline.cleared(now: 450 * ms)?.number, 2)
    }

    /// A latency event that is not a finite number of milliseconds (or is too large for
    /// Int64 nanoseconds) used to trap in `Int64(ms * 1_000_000)` while a recording ran;
    /// its timeline line now says null, and every line stays valid JSON.
    func testLatencyThatIsNotAFiniteNumberIsNull() throws {
        let timeline = ConversationTimeline()
        timeline.begin(now: MonotonicClock.now())
        let recorder = try Recorder(path: dir.path("latency.wav"), mono: true, title: "latency")
        let t0 = recorder.startedAt
        timeline.attach(recorder, now: t0)
        let values: [Double] = [.nan, .infinity, -.infinity, 1e300, -1e19, 12.5]
        for (i, ms) in values.enumerated() {
            XCTAssertNil(timeline.event(.latency(milliseconds: ms), now: t0 + UInt64(i) * self.ms))
        }
        XCTAssertTrue(timeline.detach() === recorder)
        XCTAssertNil(recorder.finishAndWait())
        let latencies = try parsedLines(recorder.timelinePath).filter { $0["event"]?.stringValue == "latency" }
        XCTAssertEqual(latencies.map { $0["ms"] }, [.null, .null, .null, .null, .null, .number("12.500")])
    }
}
