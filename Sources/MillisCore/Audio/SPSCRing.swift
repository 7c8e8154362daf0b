import Synchronization

/// A lock-free ring of samples between exactly one producer thread and one consumer
/// thread (the audio threads and the network loop): neither side ever waits for the
/// other, so a slow network loop cannot stall the microphone and a descheduled audio
/// thread cannot stall the network. Indices only grow; the capacity is a power of two.
final class SPSCRing: @unchecked Sendable {
    let capacity: Int
    private let mask: Int
    private let storage: UnsafeMutablePointer<Int16>
    /// Total samples written (producer stores, consumer loads).
    private let written = Atomic<Int>(0)
    /// Total samples read (consumer stores, producer loads).
    private let consumed = Atomic<Int>(0)

    init(minimumCapacity: Int) {
        var size = 64
        while size < minimumCapacity { size <<= 1 }
        capacity = size
        mask = size - 1
        storage = .allocate(capacity: size)
        storage.initialize(repeating: 0, count: size)
    }

    deinit { storage.deallocate() }

    /// Samples waiting to be read (either side may ask; the answer may be stale).
    var count: Int { written.load(ordering: .acquiring) - consumed.load(ordering: .acquiring) }

    /// Producer: appends as many samples as fit; returns how many were taken.
    @discardableResult
    func write(_ samples: UnsafeBufferPointer<Int16>) -> Int {
        let head = written.load(ordering: .relaxed)
        let tail = consumed.load(ordering: .acquiring)
        let n = min(samples.count, capacity - (head - tail))
        guard n > 0, let base = samples.baseAddress else { return 0 }
        copy(base, count: n, at: head)
        written.store(head + n, ordering: .releasing)
        return n
    }

    /// Producer: appends `header` then `body` as one record, or nothing when both do
    /// not fit. The consumer sees the record whole or not at all.
    func writeRecord(_ header: UnsafeBufferPointer<Int16>, _ body: UnsafeBufferPointer<Int16>) -> Bool {
        let head = written.load(ordering: .relaxed)
        let tail = consumed.load(ordering: .acquiring)
        guard header.count + body.count <= capacity - (head - tail) else { return false }
        if let h = header.baseAddress { copy(h, count: header.count, at: head) }
        if let b = body.baseAddress { copy(b, count: body.count, at: head + header.count) }
        written.store(head + header.count + body.count, ordering: .releasing)
        return true
    }

    private func copy(_ base: UnsafePointer<Int16>, count n: Int, at index: Int) {
        let start = index & mask
        let first = min(n, capacity - start)
        (storage + start).update(from: base, count: first)
        if first < n { storage.update(from: base + first, count: n - first) }
    }

    /// Consumer: moves up to `out.count` samples out; returns how many.
    @discardableResult
    func read(into out: UnsafeMutableBufferPointer<Int16>) -> Int {
        let tail = consumed.load(ordering: .relaxed)
        let head = written.load(ordering: .acquiring)
        let n = min(out.count, head - tail)
        guard n > 0, let base = out.baseAddress else { return 0 }
        let start = tail & mask
        let first = min(n, capacity - start)
        base.update(from: storage + start, count: first)
        if first < n { (base + first).update(from: storage, count: n - first) }
        consumed.store(tail + n, ordering: .releasing)
        return n
    }

    /// Consumer: drops everything written so far; returns how many samples.
    @discardableResult
    func discardAll() -> Int {
        let tail = consumed.load(ordering: .relaxed)
        let head = written.load(ordering: .acquiring)
        consumed.store(head, ordering: .releasing)
        return head - tail
    }
}
