import XCTest
@testable import MillisCore

/// What a server message or a deadline causes around the session, as the actions say
/// it, in the order the loop performs them: the microphone, the streams' announcement,
/// the converter's tail, the devices and the recording.
final class SessionConsequencesTests: XCTestCase {
    private let ms: UInt64 = 1_000_000
    private let options = try! StartOptions(agentId: "A")

    private func makeSession(externalPlayout: Bool = false, reconnectAttempts: Int = 0) -> Session {
        var settings = Session.Settings(frameBytes: 640, readyTimeoutNanoseconds: 5000 * ms, endpointDescription: "ws://test/millis")
        settings.publicKey = "PK"
        settings.externalPlayout = externalPlayout
        settings.reconnectAttempts = reconnectAttempts
        settings.reconnectInitialDelayNanoseconds = 100 * ms
        settings.reconnectMaxDelayNanoseconds = 100 * ms
        return Session(settings: settings)
    }

    private func ready(_ s: Session) {
        _ = s.start(options, now: 0)
        _ = s.transportOpened(now: 10 * ms)
        _ = s.receivedText(#"{"method":"onready","payload":{"session_id":"S1"}}"#, now: 20 * ms)
    }

    /// The actions without logs (their wording is tested elsewhere).
    private func withoutLogs(_ actions: [Session.Action]) -> [Session.Action] {
        actions.filter { if case .emit(.log) = $0 { return false }; return true }
    }

    func testOpenEnablesTheMicrophoneBeforeTheApplicationHearsAndThenAnnouncesTheStreams() {
        let s = makeSession()
        _ = s.start(options, now: 0)
        XCTAssertEqual(s.transportOpened(now: 1), [
            .enableCapture, .emit(.open), .announceStreams,
            .emit(.log(.debug, "send \(options.redactedInitiateMessage)")),
            .sendText(options.initiateMessage(publicKey: "PK")),
        ])
    }

    func testAResumedConnectionOpensWithoutAnotherOpenOrAnnouncement() {
        let s = makeSession(reconnectAttempts: 1)
        ready(s)
        _ = s.transportFailed(.connectionLost, "lost", closeCode: 1006, now: 30 * ms)
        _ = s.tick(now: 200 * ms)
        let opened = s.transportOpened(now: 210 * ms)
        XCTAssertFalse(opened.contains(.enableCapture))
        XCTAssertFalse(opened.contains(.announceStreams))
        XCTAssertFalse(opened.contains(.emit(.open)))
    }

    func testTheAgentTurningIdleFlushesTheConverterFirst() {
        let s = makeSession()
        ready(s)
        _ = s.receivedBinary([UInt8](repeating: 0, count: 640), now: 100 * ms)
        let idleAt = s.nextDeadline ?? 0
        XCTAssertEqual(s.tick(now: idleAt), [.flushOutputConverter, .emit(.agentState(.idle))])
    }

    func testAClearDropsThePlayoutThenFlushesBeforeIdle() {
        let s = makeSession()
        ready(s)
        _ = s.receivedBinary([UInt8](repeating: 0, count: 640), now: 100 * ms)
        XCTAssertEqual(withoutLogs(s.receivedText(#"{"method":"clear"}"#, now: 105 * ms)),
                       [.playout(.clear), .flushOutputConverter, .emit(.agentState(.idle))])
    }

    func testADrainedSpeakerFlushesBeforeIdle() {
        let s = makeSession(externalPlayout: true)
        ready(s)
        _ = s.receivedBinary([UInt8](repeating: 0, count: 640), now: 100 * ms)
        XCTAssertEqual(s.playoutDrained(), [.flushOutputConverter, .emit(.agentState(.idle))])
        XCTAssertEqual(s.playoutDrained(), [], "already idle")
    }

    func testACloseStopsTheDevicesAndCompletesTheRecordingBeforeTheApplicationHears() {
        let s = makeSession()
        ready(s)
        XCTAssertEqual(s.transportClosed(code: 1000, reason: "bye", now: 30 * ms), [
            .stopDevices, .completeRecording(code: 1000, reason: "bye"), .emit(.close(code: 1000, reason: "bye")),
        ])
    }

    func testACloseDuringAnAnswerTurnsIdleFirst() {
        let s = makeSession()
        ready(s)
        _ = s.receivedBinary([UInt8](repeating: 0, count: 640), now: 100 * ms)
        XCTAssertEqual(s.transportClosed(code: 1000, reason: "", now: 105 * ms), [
            .flushOutputConverter, .emit(.agentState(.idle)),
            .stopDevices, .completeRecording(code: 1000, reason: ""), .emit(.close(code: 1000, reason: "")),
        ])
    }

    func testAFailureReportsItsErrorBeforeTheDevicesStop() {
        let s = makeSession()
        _ = s.start(options, now: 0)
        XCTAssertEqual(s.transportFailed(.connect, "refused", closeCode: 1006, now: 1), [
            .emit(.log(.error, "refused")), .emit(.error(.connect, "refused")),
            .stopDevices, .completeRecording(code: 1006, reason: "refused"), .emit(.close(code: 1006, reason: "refused")),
        ])
    }

    func testAStopWhileConnectingDisconnectsThenEndsTheSameWay() {
        let s = makeSession()
        _ = s.start(options, now: 0)
        XCTAssertEqual(s.stop(now: 1), [
            .disconnect(code: nil, reason: "stopped"),
            .stopDevices, .completeRecording(code: 1000, reason: "stopped by the client"),
            .emit(.close(code: 1000, reason: "stopped by the client")),
        ])
    }

    func testAReadyTimeoutEndsTheSameWay() {
        let s = makeSession()
        _ = s.start(options, now: 0)
        let actions = withoutLogs(s.tick(now: 5000 * ms))
        XCTAssertEqual(actions.first, .disconnect(code: 1000, reason: "ready timeout"))
        XCTAssertEqual(Array(actions.suffix(3)), [
            .stopDevices, .completeRecording(code: 1006, reason: "ready timeout"),
            .emit(.close(code: 1006, reason: "ready timeout")),
        ])
    }

    func testAReconnectionKeepsTheDevicesAndTheRecording() {
        let s = makeSession(reconnectAttempts: 1)
        ready(s)
        let actions = s.transportFailed(.connectionLost, "lost", closeCode: 1006, now: 30 * ms)
        XCTAssertFalse(actions.contains(.stopDevices))
        XCTAssertFalse(actions.contains { if case .completeRecording = $0 { return true }; return false })
    }

    func testAbandonLeavesTheDevicesAndFilesToTheDestroy() {
        let s = makeSession()
        ready(s)
        XCTAssertEqual(s.abandon(), [])
        XCTAssertEqual(s.connectionState, .idle)
    }
}
