#if canImport(Glibc)
import Glibc
#endif
@testable import MillisCore
import XCTest

final class EventQueueTests: XCTestCase {
    private func readable(_ queue: EventQueue) -> Bool {
        var p = pollfd(fd: queue.fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) == 1
    }

    private func audio(_ bytes: Int) -> SessionEvent { .audio([UInt8](repeating: 1, count: bytes)) }

    func testEventsComeOutInOrderAndTheDescriptorIsReadableExactlyWhileOneIsQueued() throws {
        let queue = try EventQueue(limitBytes: 1 << 20)
        XCTAssertFalse(readable(queue))
        XCTAssertNil(queue.pop())
        queue.push(.open)
        XCTAssertTrue(readable(queue))
        queue.push(.ready(sessionId: "s", payloadJSON: "{}"))
        queue.push(.transcript("hello", isFinal: true))
        XCTAssertEqual(queue.pop(), .open)
        XCTAssertTrue(readable(queue), "two still queued")
        XCTAssertEqual(queue.pop(), .ready(sessionId: "s", payloadJSON: "{}"))
        XCTAssertEqual(queue.pop(), .transcript("hello", isFinal: true))
        XCTAssertFalse(readable(queue), "empty again")
        XCTAssertNil(queue.pop())
        queue.push(.sessionEnded)
        XCTAssertTrue(readable(queue), "readable again after being emptied")
    }

    func testALimitOutOfRangeIsRefused() {
        XCTAssertThrowsError(try EventQueue(limitBytes: 1000))
        XCTAssertThrowsError(try EventQueue(limitBytes: (1 << 30) + 1))
    }

    /// Past the limit, a run of drops becomes one error where it began; the close is kept.
    func testDropsAreReportedWhereTheyHappenedAndTheCloseIsNeverDropped() throws {
        let limit = 64 << 10
        let queue = try EventQueue(limitBytes: limit)
        let frame = 1000, cost = frame + EventQueue.overheadBytes
        let fit = limit / cost
        for _ in 0..<fit { queue.push(audio(frame)) }
        for _ in 0..<5 { queue.push(audio(frame)) }  // dropped: one run of 5
        queue.push(.close(code: 1000, reason: "done"))
        XCTAssertEqual(queue.droppedEvents, 5)
        for _ in 0..<fit { XCTAssertEqual(queue.pop(), audio(frame)) }
        guard case .error(let status, let message)? = queue.pop() else { return XCTFail("no drop report") }
        XCTAssertEqual(status, .noMemory)
        XCTAssertTrue(message.hasPrefix("5 events (\(5 * cost) bytes) dropped here"), message)
        XCTAssertEqual(queue.pop(), .close(code: 1000, reason: "done"))
        XCTAssertNil(queue.pop())
        // Room again: events are kept, and a later drop starts a new run.
        queue.push(audio(frame))
        XCTAssertEqual(queue.pop(), audio(frame))
    }

    /// A message the connection accepted is never refused for its size alone.
    func testAnEventBiggerThanTheLimitIsKeptWhenTheQueueIsEmpty() throws {
        let queue = try EventQueue(limitBytes: 64 << 10)
        queue.push(audio(1 << 20))
        queue.push(audio(1000))  // dropped: the queue holds more than its limit
        XCTAssertEqual(queue.pop(), audio(1 << 20))
        guard case .error(_, let message)? = queue.pop() else { return XCTFail("no drop report") }
        XCTAssertTrue(message.hasPrefix("1 event ("), message)
        XCTAssertNil(queue.pop())
        queue.push(.open)
        queue.push(audio(1 << 20))  // dropped: the queue is not empty
        XCTAssertEqual(queue.droppedEvents, 2)
    }

    func testTwoRunsOfDropsAreTwoReports() throws {
        let queue = try EventQueue(limitBytes: 64 << 10)
        queue.push(audio(60_000))
        queue.push(audio(10_000))  // dropped
        queue.push(.latency(milliseconds: 5))  // kept: it fits
        queue.push(audio(10_000))  // dropped: a new run
        XCTAssertEqual(queue.pop(), audio(60_000))
        guard case .error(_, let first)? = queue.pop() else { return XCTFail() }
        XCTAssertTrue(first.hasPrefix("1 event ("), first)
        XCTAssertEqual(queue.pop(), .latency(milliseconds: 5))
        guard case .error(_, let second)? = queue.pop() else { return XCTFail() }
        XCTAssertTrue(second.hasPrefix("1 event ("), second)
        XCTAssertNil(queue.pop())
    }

    func testNextWaitsForAnEventOrTheTimeout() throws {
        let queue = try EventQueue(limitBytes: 1 << 20)
        XCTAssertNil(queue.next(timeoutMilliseconds: 0))
        XCTAssertNil(queue.next(timeoutMilliseconds: 20))
        let pusher = Thread { usleep(20_000); queue.push(.inputEnded) }
        pusher.start()
        XCTAssertEqual(queue.next(timeoutMilliseconds: -1), .inputEnded, "a negative timeout waits without limit")
    }

    /// A long-running producer and a consumer that compacts: nothing lost or reordered.
    func testManyEventsThroughOneQueue() throws {
        let queue = try EventQueue(limitBytes: 1 << 30)
        for i in 0..<5000 { queue.push(.latency(milliseconds: Double(i))) }
        for i in 0..<2500 { XCTAssertEqual(queue.pop(), .latency(milliseconds: Double(i))) }
        for i in 5000..<6000 { queue.push(.latency(milliseconds: Double(i))) }
        for i in 2500..<6000 { XCTAssertEqual(queue.pop(), .latency(milliseconds: Double(i))) }
        XCTAssertNil(queue.pop())
    }
}
