import Synchronization

/// When each agent frame came off the socket, for the playback thread to tell how long
/// the frame took to reach the device (millis_client_stats_json: `wire_to_device_ms`).
/// One producer (the network loop), one consumer (the playback thread), lock-free; a
/// full ring drops the stamp, never audio. Positions count agent samples queued.
final class ArrivalStamps: @unchecked Sendable {
    struct Stamp {
        /// The frame's first sample, counted over everything queued so far.
        var position: Int
        var receivedAt: UInt64
        /// Samples queued ahead of it: the playout queue it waits behind.
        var ahead: Int
    }

    private static let capacity = 256
    private let slots = UnsafeMutablePointer<Stamp>.allocate(capacity: ArrivalStamps.capacity)
    private let written = Atomic<Int>(0)
    private let consumed = Atomic<Int>(0)

    deinit { slots.deallocate() }

    /// Producer.
    func push(_ stamp: Stamp) {
        let head = written.load(ordering: .relaxed)
        guard head - consumed.load(ordering: .acquiring) < Self.capacity else { return }
        (slots + head % Self.capacity).initialize(to: stamp)
        written.store(head + 1, ordering: .releasing)
    }

    /// Consumer: the oldest stamp whose frame starts before `position`, if any.
    func pop(before position: Int) -> Stamp? {
        let tail = consumed.load(ordering: .relaxed)
        guard tail < written.load(ordering: .acquiring) else { return nil }
        let stamp = slots[tail % Self.capacity]
        guard stamp.position < position else { return nil }
        consumed.store(tail + 1, ordering: .releasing)
        return stamp
    }

    /// Consumer: forgets every stamp (the audio they describe was cleared).
    func removeAll() {
        consumed.store(written.load(ordering: .acquiring), ordering: .releasing)
    }
}
