import XCTest
@testable import MillisCore

final class SessionTests: XCTestCase {
    private let ms: UInt64 = 1_000_000

    /// The wall clock the sessions see (tests move it).
    private let wallClock = WallClockStub()

    private func makeSession(frameBytes: Int = 640, pingEvery: Int? = nil, reconnectAttempts: Int = 0,
                             queueLimit: Int = 512 * 1024) -> Session {
        var settings = Session.Settings(frameBytes: frameBytes, readyTimeoutNanoseconds: 5000 * ms, endpointDescription: "ws://test/millis")
        if let pingEvery { settings.pingEveryAudioBytes = pingEvery * frameBytes }
        let clock = wallClock
        settings.wallClockMilliseconds = { clock.now }
        settings.publicKey = "PK"
        settings.reconnectAttempts = reconnectAttempts
        settings.reconnectInitialDelayNanoseconds = 100 * ms
        settings.reconnectMaxDelayNanoseconds = 300 * ms
        settings.sendQueueLimitBytes = queueLimit
        return Session(settings: settings)
    }

    private let agentOptions = try! StartOptions(agentId: "A")
    private var initiateText: String { agentOptions.initiateMessage(publicKey: "PK") }

    /// The events among actions, without logs.
    private func events(_ actions: [Session.Action]) -> [SessionEvent] {
        actions.compactMap {
            if case .emit(let e) = $0, case .log = e { return nil }
            if case .emit(let e) = $0 { return e }
            return nil
        }
    }

    private func readySession(_ s: inout Session) {
        _ = s.start(agentOptions, now: 0)
        _ = s.transportOpened(now: 10 * ms)
        _ = s.receivedText(#"{"method":"onready","payload":{"session_id":"S1"}}"#, now: 20 * ms)
    }

    func testStartOpenReady() {
        let s = makeSession()
        XCTAssertTrue(s.start(agentOptions, now: 0).contains(.connect))
        XCTAssertEqual(s.connectionState, .connecting)
        let opened = s.transportOpened(now: 1)
        XCTAssertEqual(events(opened), [.open])
        XCTAssertTrue(opened.contains(.sendText(initiateText)))
        XCTAssertEqual(s.connectionState, .open)
        let ready = s.receivedText(#"{"method":"onready","payload":{"session_id":"S1"}}"#, now: 2)
        XCTAssertEqual(events(ready), [.ready(sessionId: "S1", payloadJSON: #"{"session_id":"S1"}"#)])
        XCTAssertEqual(s.connectionState, .ready)
        XCTAssertEqual(s.sessionId, "S1")
        XCTAssertTrue(s.start(agentOptions, now: 3).isEmpty, "start while running does nothing")
    }

    func testAudioBeforeTheSocketOpensIsDroppedNotQueued() {
        let s = makeSession()
        _ = s.start(agentOptions, now: 0)
        XCTAssertFalse(s.acceptsAudio)
        XCTAssertTrue(s.userAudio([UInt8](repeating: 1, count: 1280), now: 1).isEmpty)
        XCTAssertEqual(s.stats.audioFramesDropped, 2)
        _ = s.transportOpened(now: 2)
        let sent = s.userAudio([UInt8](repeating: 2, count: 640), now: 3)
        XCTAssertEqual(sent, [.sendBinary([UInt8](repeating: 2, count: 640))], "only the new audio, no burst")
    }

    func testAudioIsSentFromInitiateOnBeforeOnready() {
        let s = makeSession()
        _ = s.start(agentOptions, now: 0)
        let opened = s.transportOpened(now: 1)
        XCTAssertTrue(opened.contains(.sendText(initiateText)))
        XCTAssertTrue(s.acceptsAudio)
        XCTAssertEqual(s.userAudio([UInt8](repeating: 3, count: 640), now: 2), [.sendBinary([UInt8](repeating: 3, count: 640))])
        XCTAssertEqual(s.stats.framesSent, 1)
        XCTAssertEqual(s.stats.audioFramesDropped, 0)
    }

    func testAudioIsCutIntoFramesAndPingedWithTheWallClock() {
        var s = makeSession(frameBytes: 4, pingEvery: 3)
        readySession(&s)
        wallClock.now = 1_796_321_858_489
        let a = s.userAudio([1, 2, 3, 4, 5, 6], now: 30 * ms)
        XCTAssertEqual(a, [.sendBinary([1, 2, 3, 4])])
        let b = s.userAudio([7, 8, 9, 10, 11, 12], now: 31 * ms)
        XCTAssertEqual(b.count, 3)
        XCTAssertEqual(b[0], .sendBinary([5, 6, 7, 8]))
        XCTAssertEqual(b[1], .sendBinary([9, 10, 11, 12]))
        XCTAssertEqual(b[2], .sendText(#"{"method":"ping","data":"1796321858489"}"#))
        wallClock.now += 12
        _ = s.receivedText(#"{"method":"pong","data":"1796321858489"}"#, now: 43 * ms)
        XCTAssertEqual(s.stats.lastPingRTTMilliseconds, 12)
        XCTAssertEqual(s.stats.framesSent, 3)
    }

    /// The web client pings after 1000 chunks of 128 samples: 8 s of audio, whatever
    /// the frame size, the remainder carried from one ping to the next.
    func testPingEveryEightSecondsOfAudioForAnyFrameSize() {
        for frameMs in [10, 20, 30, 40] {
            var s = makeSession(frameBytes: frameMs * 32)
            readySession(&s)
            var audioBytes = 0
            var pingsAt: [Int] = []
            for _ in 0..<(20_000 / frameMs) {  // 20 s
                for action in s.userAudio([UInt8](repeating: 0, count: frameMs * 32), now: 30 * ms) {
                    if case .sendBinary(let frame) = action { audioBytes += frame.count }
                    if case .sendText(let text) = action, text.contains("\"ping\"") { pingsAt.append(audioBytes) }
                }
            }
            let frame = frameMs * 32
            // A ping follows the first frame that reaches each 8 s mark.
            let expected = [256_000, 512_000].map { ($0 + frame - 1) / frame * frame }
            XCTAssertEqual(pingsAt, expected, "frame_ms \(frameMs)")
        }
    }

    func testPongsThatAnswerNoPingOfOursAreIgnored() throws {
        var s = makeSession(frameBytes: 4, pingEvery: 1)
        readySession(&s)
        wallClock.now = 5_000
        _ = s.userAudio([0, 0, 0, 0], now: 30 * ms)
        for data in [#""nan""#, "1e999", #""1e999""#, #""1700000000000000000""#, "-1e308", #""-inf""#, "null",
                     #"{"a":1}"#, #""4999""#, "5000.5"] {
            _ = s.receivedText(#"{"method":"pong","data":"# + data + "}", now: 40 * ms)
            XCTAssertNil(s.stats.lastPingRTTMilliseconds, data)
        }
        XCTAssertEqual(s.stats.pongsIgnored, 10)
        let stats = try JSONParser.parse(s.stats.json)
        XCTAssertEqual(stats["last_ping_rtt_ms"], .null)
        XCTAssertEqual(stats["pongs_ignored"], .number("10"))
        wallClock.now = 5_250
        _ = s.receivedText(#"{"method":"pong","data":5000}"#, now: 50 * ms)
        XCTAssertEqual(s.stats.lastPingRTTMilliseconds, 250, "a number with our digits answers our ping")
        _ = s.receivedText(#"{"method":"pong","data":"5000"}"#, now: 60 * ms)
        XCTAssertEqual(s.stats.pongsIgnored, 11, "each ping is answered once")
    }

    func testAWallClockSteppedBackGivesNoNegativeRoundTrip() {
        var s = makeSession(frameBytes: 4, pingEvery: 1)
        readySession(&s)
        wallClock.now = 9_000
        _ = s.userAudio([0, 0, 0, 0], now: 30 * ms)
        wallClock.now = 1_000
        _ = s.receivedText(#"{"method":"pong","data":"9000"}"#, now: 40 * ms)
        XCTAssertEqual(s.stats.lastPingRTTMilliseconds, 0)
    }

    func testStatsNeverTrapOnAbsurdFigures() throws {
        var stats = SessionStats()
        for value in [Double.nan, .infinity, -.infinity, 1e300, -1e300, 1.7e18, Double.greatestFiniteMagnitude] {
            stats.lastPingRTTMilliseconds = value
            stats.lastLatencyMilliseconds = value
            let parsed = try JSONParser.parse(stats.json)
            XCTAssertEqual(parsed["last_ping_rtt_ms"], .null, "\(value)")
            XCTAssertEqual(parsed["last_latency_ms"], .null, "\(value)")
        }
        stats.lastPingRTTMilliseconds = 12.3456
        XCTAssertEqual(try JSONParser.parse(stats.json)["last_ping_rtt_ms"], .number("12.346"))
    }

    // MARK: Fields of the wrong type

    func testTextOfTheWrongTypeIsReportedAndHandedOnRaw() {
        for method in ["ontranscript", "onresponsetext"] {
            for data in ["5", #"{"t":"x"}"#, "null", #"["a"]"#, "true"] {
                var s = makeSession()
                readySession(&s)
                let text = #"{"method":""# + method + #"","data":"# + data + #","payload":{"is_final":true}}"#
                let e = events(s.receivedText(text, now: 30 * ms))
                XCTAssertEqual(e.count, 2, text)
                guard case .error(let status, let message)? = e.first else { return XCTFail("no error for \(text)") }
                XCTAssertEqual(status, .badMessage)
                XCTAssertTrue(message.contains(method) && message.contains("\"data\""), message)
                XCTAssertEqual(e.last, .message(method: method, json: text))
            }
            var s = makeSession()
            readySession(&s)
            let missing = #"{"method":""# + method + #""}"#
            XCTAssertEqual(events(s.receivedText(missing, now: 30 * ms)).last, .message(method: method, json: missing))
        }
    }

    func testFunctionFieldsOfTheWrongTypeAreReported() {
        var s = makeSession()
        readySession(&s)
        let good = #"{"method":"onfunction","payload":{"name":"f","params":{"a":1}}}"#
        XCTAssertEqual(events(s.receivedText(good, now: 30 * ms)), [.function(text: "", name: "f", paramsJSON: #"{"a":1}"#)])
        for bad in [#"{"method":"onfunction","data":7,"payload":{"name":"f"}}"#,
                    #"{"method":"onfunction","payload":{"name":7}}"#,
                    #"{"method":"onfunction","payload":{}}"#] {
            let e = events(s.receivedText(bad, now: 30 * ms))
            guard case .error(.badMessage, _)? = e.first else { return XCTFail("no error for \(bad)") }
            XCTAssertEqual(e.last, .message(method: "onfunction", json: bad))
        }
    }

    /// `is_final` as the web client reads it: JavaScript truthiness.
    func testIsFinalFollowsJavaScriptTruthiness() {
        let cases: [(String, Bool)] = [("true", true), ("false", false), (#""true""#, true), (#""false""#, true),
                                       (#""0""#, true), (#""""#, false), ("1", true), ("0", false), ("-0", false),
                                       ("0.0", false), ("2.5", true), ("null", false), ("[]", true), ("{}", true)]
        for (value, final) in cases {
            var s = makeSession()
            readySession(&s)
            let text = #"{"method":"ontranscript","data":"hi","payload":{"is_final":"# + value + "}}"
            XCTAssertEqual(events(s.receivedText(text, now: 30 * ms)), [.transcript("hi", isFinal: final)], value)
        }
        var s = makeSession()
        readySession(&s)
        XCTAssertEqual(events(s.receivedText(#"{"method":"onresponsetext","data":"a"}"#, now: 30 * ms)),
                       [.responseText("a", isFinal: false)], "no payload: partial")
    }

    func testSessionIdOfAnyJSONTypeIsKeptAndContinuedAsSent() throws {
        for (sent, text) in [("12345", "12345"), (#"{"a":[1]}"#, #"{"a":[1]}"#), (#""S1""#, "S1"), ("true", "true")] {
            let s = makeSession(reconnectAttempts: 2)
            _ = s.start(agentOptions, now: 0)
            _ = s.transportOpened(now: 1)
            let e = events(s.receivedText(#"{"method":"onready","payload":{"session_id":"# + sent + "}}", now: 2))
            guard case .ready(let id, _)? = e.first else { return XCTFail("no ready for \(sent)") }
            XCTAssertEqual(id, text)
            XCTAssertEqual(s.sessionId, text)
            _ = s.transportFailed(.connectionLost, "cut", closeCode: 1006, now: 10 * ms)
            _ = s.tick(now: try XCTUnwrap(s.nextDeadline))
            let initiate = s.transportOpened(now: 500 * ms).compactMap { a -> String? in
                if case .sendText(let t) = a { return t }
                return nil
            }
            XCTAssertEqual(initiate.count, 1)
            XCTAssertTrue(initiate[0].contains(#""session_continuation":{"session_id":"# + sent + "}"), initiate[0])
        }
    }

    func testOnreadyWithoutASessionIdWarnsAndAReconnectionStartsAfresh() throws {
        for sent in ["null", #""""#] {
            let s = makeSession(reconnectAttempts: 2)
            _ = s.start(agentOptions, now: 0)
            _ = s.transportOpened(now: 1)
            let actions = s.receivedText(#"{"method":"onready","payload":{"session_id":"# + sent + "}}", now: 2)
            XCTAssertTrue(actions.contains { if case .emit(.log(.warn, let m)) = $0 { return m.contains("session_id") }; return false })
            XCTAssertEqual(s.sessionId, "")
            _ = s.transportFailed(.connectionLost, "cut", closeCode: 1006, now: 10 * ms)
            _ = s.tick(now: try XCTUnwrap(s.nextDeadline))
            XCTAssertTrue(s.transportOpened(now: 500 * ms).contains(.sendText(initiateText)), "nothing to continue")
        }
    }

    func testMuteSendsZeros() {
        var s = makeSession(frameBytes: 2)
        readySession(&s)
        s.setMuted(true)
        XCTAssertEqual(s.userAudio([9, 9], now: 30 * ms), [.sendBinary([0, 0])])
        s.setMuted(false)
        XCTAssertEqual(s.userAudio([9, 9], now: 31 * ms), [.sendBinary([9, 9])])
    }

    func testAnswerLatencyStatesAndPlayoutInRealTime() {
        var s = makeSession()
        readySession(&s)
        XCTAssertEqual(events(s.receivedText(#"{"method":"start_answering"}"#, now: 100 * ms)), [.agentState(.prepareAnswer)])
        // 640 bytes = 20 ms of audio.
        let first = events(s.receivedBinary([UInt8](repeating: 0, count: 640), now: 350 * ms))
        XCTAssertEqual(first, [.latency(milliseconds: 250), .agentState(.answer), .audio([UInt8](repeating: 0, count: 640))])
        XCTAssertEqual(events(s.receivedBinary([UInt8](repeating: 0, count: 640), now: 360 * ms)).count, 1, "audio only")
        // Played until 390 ms; idle after the grace.
        let grace = s.settings.playoutGraceNanoseconds
        XCTAssertTrue(events(s.tick(now: 390 * ms + grace - 1)).isEmpty)
        XCTAssertEqual(s.nextDeadline, 390 * ms + grace)
        XCTAssertEqual(events(s.tick(now: 390 * ms + grace)), [.agentState(.idle)])
        XCTAssertEqual(s.stats.lastLatencyMilliseconds, 250)
    }

    func testPauseHoldsPlayoutAndUnpauseResumesWhereItStopped() {
        var s = makeSession()
        readySession(&s)
        _ = s.receivedBinary([UInt8](repeating: 0, count: 3200), now: 100 * ms) // 100 ms, ends at 200
        XCTAssertEqual(events(s.receivedText(#"{"method":"pause"}"#, now: 150 * ms)), [.agentState(.pause)])
        _ = s.receivedBinary([UInt8](repeating: 0, count: 640), now: 160 * ms) // queued while paused: +20 ms
        XCTAssertEqual(s.agentState, .pause)
        XCTAssertTrue(events(s.tick(now: 10_000 * ms)).isEmpty, "no idle while paused")
        XCTAssertEqual(events(s.receivedText(#"{"method":"unpause"}"#, now: 500 * ms)), [.agentState(.answer)])
        // 50 ms left + 20 ms queued = ends at 570 ms.
        XCTAssertEqual(s.nextDeadline, 570 * ms + s.settings.playoutGraceNanoseconds)
    }

    func testClearGoesIdleAtOnce() {
        var s = makeSession()
        readySession(&s)
        _ = s.receivedBinary([UInt8](repeating: 0, count: 32000), now: 100 * ms)
        XCTAssertEqual(events(s.receivedText(#"{"method":"clear"}"#, now: 120 * ms)), [.agentState(.idle)])
        XCTAssertNil(s.nextDeadline)
    }

    func testServerMessagesBecomeEvents() {
        var s = makeSession()
        readySession(&s)
        XCTAssertEqual(events(s.receivedText(#"{"method":"ontranscript","data":"hel","payload":{"is_final":false}}"#, now: 1)), [.transcript("hel", isFinal: false)])
        XCTAssertEqual(events(s.receivedText(#"{"method":"onresponsetext","data":"Hi","payload":{"is_final":true}}"#, now: 1)), [.responseText("Hi", isFinal: true)])
        XCTAssertEqual(events(s.receivedText(#"{"method":"onfunction","data":"","payload":{"name":"f","params":{"a":1}}}"#, now: 1)),
                       [.function(text: "", name: "f", paramsJSON: #"{"a":1}"#)])
        XCTAssertEqual(events(s.receivedText(#"{"method":"onsessionended"}"#, now: 1)), [.sessionEnded])
        let unknown = #"{"method":"ai_action","data":{"x":1}}"#
        XCTAssertEqual(events(s.receivedText(unknown, now: 1)), [.message(method: "ai_action", json: unknown)])
    }

    func testMalformedServerMessagesAreReportedAndTheSessionGoesOn() {
        var s = makeSession()
        readySession(&s)
        guard case .error(let status, let message) = events(s.receivedText("{\"method\": ", now: 1)).first else { return XCTFail() }
        XCTAssertEqual(status, .badMessage)
        XCTAssertTrue(message.contains("malformed JSON"))
        guard case .error(let s2, _) = events(s.receivedText("[1]", now: 1)).first else { return XCTFail() }
        XCTAssertEqual(s2, .badMessage)
        XCTAssertEqual(s.connectionState, .ready)
    }

    func testOddLengthAudioIsReportedAndTrimmed() {
        var s = makeSession()
        readySession(&s)
        let e = events(s.receivedBinary([UInt8](repeating: 0, count: 641), now: 1))
        guard case .error(.badMessage, let message) = e.first else { return XCTFail("\(e)") }
        XCTAssertTrue(message.contains("641"))
        XCTAssertTrue(e.contains(.audio([UInt8](repeating: 0, count: 640))))
    }

    func testReadyTimeout() {
        let s = makeSession()
        _ = s.start(agentOptions, now: 0)
        _ = s.transportOpened(now: 1)
        XCTAssertEqual(s.nextDeadline, 5000 * ms)
        let actions = s.tick(now: 5000 * ms)
        XCTAssertTrue(actions.contains(.disconnect(code: 1000, reason: "ready timeout")))
        let e = events(actions)
        guard case .error(.timeout, let message) = e.first else { return XCTFail("\(e)") }
        XCTAssertTrue(message.contains("5000 ms"))
        XCTAssertEqual(e.last, .close(code: 1006, reason: "ready timeout"))
        XCTAssertEqual(s.connectionState, .idle)
        XCTAssertEqual(s.finishedConversations, 1)
    }

    func testStopClosesAndTheServersAnswerEndsTheConversation() {
        var s = makeSession()
        readySession(&s)
        XCTAssertEqual(s.stop(now: 1).last, .closeHandshake(code: 1000, reason: ""))
        XCTAssertEqual(s.connectionState, .closing)
        XCTAssertTrue(s.stop(now: 2).isEmpty)
        XCTAssertEqual(events(s.transportClosed(code: 1000, reason: "", now: 1)), [.close(code: 1000, reason: "")])
        XCTAssertEqual(s.connectionState, .idle)
        XCTAssertTrue(s.stop(now: 3).isEmpty, "stop when idle is harmless")
    }

    func testStopWhileConnectingDisconnectsAndCloses() {
        let s = makeSession()
        _ = s.start(agentOptions, now: 0)
        let actions = s.stop(now: 1)
        XCTAssertEqual(actions.first, .disconnect(code: nil, reason: "stopped"))
        XCTAssertEqual(events(actions).last, .close(code: 1000, reason: "stopped by the client"))
    }

    func testServerCloseWithErrorCodeIsAnErrorThenClose() {
        var s = makeSession()
        readySession(&s)
        let e = events(s.transportClosed(code: 4004, reason: "unknown agent_id: x", now: 1))
        XCTAssertEqual(e, [.error(.serverClosed, "server closed the session with code 4004: unknown agent_id: x"), .close(code: 4004, reason: "unknown agent_id: x")])
        var normal = makeSession()
        readySession(&normal)
        XCTAssertEqual(events(normal.transportClosed(code: 1000, reason: "session ended", now: 1)), [.close(code: 1000, reason: "session ended")])
    }

    func testTransportFailureIsErrorThenCloseOnce() {
        let s = makeSession()
        _ = s.start(agentOptions, now: 0)
        let e = events(s.transportFailed(.connect, "could not connect", closeCode: 1006, now: 1))
        XCTAssertEqual(e, [.error(.connect, "could not connect"), .close(code: 1006, reason: "could not connect")])
        XCTAssertTrue(s.transportFailed(.connect, "again", closeCode: 1006, now: 2).isEmpty, "one close only")
    }

    func testStatsJSONShape() throws {
        var s = makeSession()
        readySession(&s)
        let stats = try JSONParser.parse(s.stats.json)
        for key in ["frames_sent", "bytes_sent", "frames_received", "bytes_received", "audio_frames_dropped",
                    "messages_sent", "messages_received", "last_ping_rtt_ms", "last_latency_ms"] {
            XCTAssertNotNil(stats[key], key)
        }
        XCTAssertEqual(stats["last_ping_rtt_ms"], .null)
    }

    // MARK: Reconnection

    private func reconnecting(_ actions: [Session.Action]) -> (attempt: Int, delay: Int)? {
        for case .emit(.reconnecting(let attempt, let delay)) in actions { return (attempt, delay) }
        return nil
    }

    func testLostConnectionOfAReadySessionReconnectsWithContinuation() throws {
        var s = makeSession(reconnectAttempts: 3)
        readySession(&s)
        _ = s.receivedText(#"{"method":"start_answering"}"#, now: 30 * ms)
        let lost = s.transportFailed(.connectionLost, "gone", closeCode: 1006, now: 40 * ms)
        let (attempt, delay) = try XCTUnwrap(reconnecting(lost))
        XCTAssertEqual(attempt, 1)
        XCTAssertTrue((50...100).contains(delay), "jittered in [initial/2, initial]: \(delay)")
        XCTAssertTrue(events(lost).contains(.agentState(.idle)), "playback state reset")
        XCTAssertFalse(events(lost).contains { if case .error = $0 { return true }; if case .close = $0 { return true }; return false })
        XCTAssertEqual(s.connectionState, .reconnecting)
        XCTAssertTrue(s.userAudio([UInt8](repeating: 1, count: 640), now: 41 * ms).isEmpty, "audio in the gap is dropped")
        // The reported delay is the real one truncated to whole milliseconds.
        let deadline = try XCTUnwrap(s.nextDeadline)
        XCTAssertTrue((40 * ms + UInt64(delay) * ms)..<(40 * ms + UInt64(delay + 1) * ms) ~= deadline, "\(deadline)")
        XCTAssertTrue(s.tick(now: s.nextDeadline!).contains(.connect))
        XCTAssertEqual(s.connectionState, .reconnecting, "still reconnecting while the transport connects")
        let opened = s.transportOpened(now: 200 * ms)
        XCTAssertEqual(s.connectionState, .reconnecting, "still reconnecting until the resumed session is ready")
        XCTAssertFalse(events(opened).contains(.open), "onopen is not repeated")
        let initiate: String = try XCTUnwrap(opened.compactMap { if case .sendText(let t) = $0 { return t }; return nil }.first)
        XCTAssertEqual(try JSONParser.parse(initiate)["data"]?["session_continuation"]?["session_id"], .string("S1"))
        let ready = events(s.receivedText(#"{"method":"onready","payload":{"session_id":"S1"}}"#, now: 210 * ms))
        XCTAssertEqual(ready, [.reconnected(sessionId: "S1")])
        XCTAssertEqual(s.stats.reconnects, 1)
        XCTAssertEqual(s.reconnectAttempt, 0)
        XCTAssertEqual(s.connectionState, .ready)
        XCTAssertEqual(s.userAudio([UInt8](repeating: 1, count: 640), now: 220 * ms).count, 1, "audio flows again")
    }

    func testAbandonEndsEveryStateSilentlyAndDisarmsTheTimers() {
        // Waiting to reconnect: the backoff deadline must not outlive a destroyed client.
        var waiting = makeSession(reconnectAttempts: 3)
        readySession(&waiting)
        _ = waiting.transportFailed(.connectionLost, "gone", closeCode: 1006, now: 40 * ms)
        XCTAssertNotNil(waiting.nextDeadline)
        XCTAssertEqual(waiting.abandon(), [])
        XCTAssertEqual(waiting.connectionState, .idle)
        XCTAssertNil(waiting.nextDeadline)
        // Connecting (the ready deadline) and talking.
        let connecting = makeSession(reconnectAttempts: 3)
        _ = connecting.start(try! StartOptions(agentId: "a"), now: 0)
        XCTAssertNotNil(connecting.nextDeadline)
        XCTAssertEqual(connecting.abandon(), [])
        XCTAssertNil(connecting.nextDeadline)
        var ready = makeSession(reconnectAttempts: 3)
        readySession(&ready)
        XCTAssertEqual(ready.abandon(), [])
        XCTAssertEqual(ready.connectionState, .idle)
        XCTAssertEqual(ready.abandon(), [], "twice is harmless")
    }

    func testBackoffGrowsIsCappedAndGivesUpWithOneErrorAndOneClose() throws {
        var s = makeSession(reconnectAttempts: 3)
        readySession(&s)
        var now = 50 * ms
        var actions = s.transportFailed(.connectionLost, "gone", closeCode: 1006, now: now)
        var delays: [Int] = []
        for attempt in 1...3 {
            let r = try XCTUnwrap(reconnecting(actions), "attempt \(attempt)")
            XCTAssertEqual(r.attempt, attempt)
            delays.append(r.delay)
            now = s.nextDeadline!
            XCTAssertTrue(s.tick(now: now).contains(.connect))
            actions = s.transportFailed(.connect, "refused", closeCode: 1006, now: now)
        }
        XCTAssertTrue((50...100).contains(delays[0]) && (100...200).contains(delays[1]) && (150...300).contains(delays[2]), "\(delays)")
        let e = events(actions)
        XCTAssertEqual(e.filter { if case .error = $0 { return true }; return false }.count, 1)
        guard case .error(.connectionLost, let message) = e.first(where: { if case .error = $0 { return true }; return false }) else { return XCTFail("\(e)") }
        XCTAssertTrue(message.contains("3 reconnection attempts failed"), message)
        XCTAssertEqual(e.last, .close(code: 1006, reason: "connection lost"))
        XCTAssertEqual(s.connectionState, .idle)
    }

    func testRetryableCloseCodesReconnectAndFinalOnesDoNot() {
        for code: UInt16 in [1001, 1011, 1012, 1013, 1014] {
            var s = makeSession(reconnectAttempts: 2)
            readySession(&s)
            XCTAssertNotNil(reconnecting(s.transportClosed(code: code, reason: "x", now: 1)), "\(code)")
        }
        for code: UInt16 in [1000, 4001, 4010, 1008] {
            var s = makeSession(reconnectAttempts: 2)
            readySession(&s)
            let actions = s.transportClosed(code: code, reason: "x", now: 1)
            XCTAssertNil(reconnecting(actions), "\(code)")
            XCTAssertEqual(events(actions).last, .close(code: Int(code), reason: "x"))
        }
    }

    func testNoReconnectAfterSessionEndedBeforeReadyOrWhenDisabled() {
        var ended = makeSession(reconnectAttempts: 2)
        readySession(&ended)
        _ = ended.receivedText(#"{"method":"onsessionended"}"#, now: 1)
        XCTAssertNil(reconnecting(ended.transportFailed(.connectionLost, "x", closeCode: 1006, now: 2)))
        let never = makeSession(reconnectAttempts: 2)
        _ = never.start(agentOptions, now: 0)
        XCTAssertNil(reconnecting(never.transportFailed(.connect, "refused", closeCode: 1006, now: 1)))
        var off = makeSession(reconnectAttempts: 0)
        readySession(&off)
        let actions = off.transportFailed(.connectionLost, "x", closeCode: 1006, now: 2)
        XCTAssertNil(reconnecting(actions))
        XCTAssertEqual(events(actions).first, .error(.connectionLost, "x"))
    }

    func testStopDuringTheReconnectWaitClosesAtOnce() {
        var s = makeSession(reconnectAttempts: 2)
        readySession(&s)
        _ = s.transportFailed(.connectionLost, "x", closeCode: 1006, now: 1)
        let actions = s.stop(now: 2)
        XCTAssertEqual(events(actions).last, .close(code: 1000, reason: "stopped by the client"))
        XCTAssertNil(s.nextDeadline, "no reconnection left armed")
    }

    func testReadyTimeoutOfAReconnectionTriesAgain() throws {
        var s = makeSession(reconnectAttempts: 2)
        readySession(&s)
        _ = s.transportFailed(.connectionLost, "x", closeCode: 1006, now: 1)
        _ = s.tick(now: s.nextDeadline!)
        _ = s.transportOpened(now: 300 * ms)
        let actions = s.tick(now: s.nextDeadline!)
        XCTAssertEqual(actions.first, .disconnect(code: 1000, reason: "ready timeout"))
        XCTAssertEqual(try XCTUnwrap(reconnecting(actions)).attempt, 2)
    }

    // MARK: Backpressure

    func testAudioIsDroppedWhenTheSendQueueIsFullButControlMessagesAreKept() {
        var s = makeSession(frameBytes: 640, pingEvery: 2, queueLimit: 2000)
        readySession(&s)
        let full = s.userAudio([UInt8](repeating: 1, count: 1280), now: 30 * ms, queuedBytes: 1500)
        XCTAssertTrue(full.isEmpty)
        XCTAssertEqual(s.stats.audioFramesDroppedBackpressure, 2)
        let room = s.userAudio([UInt8](repeating: 1, count: 1280), now: 31 * ms, queuedBytes: 0)
        XCTAssertEqual(room.filter { if case .sendBinary = $0 { return true }; return false }.count, 2, "two frames of 654 fit in 2000")
        XCTAssertTrue(room.contains { if case .sendText = $0 { return true }; return false }, "the ping still goes")
        XCTAssertEqual(s.sendJSON(#"{"method":"x"}"#), [.sendText(#"{"method":"x"}"#)])
    }
}

/// A wall clock a test sets by hand.
final class WallClockStub: @unchecked Sendable {
    var now: Int64 = 1_700_000_000_000
}
