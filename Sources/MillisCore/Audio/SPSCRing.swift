#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A lock-free ring of samples between exactly one producer thread and one consumer
/// thread (the audio threads and the network loop): neither side ever waits for the
/// other, so a slow network loop cannot stall the microphone and a descheduled audio
/// thread cannot stall the network. Indices only grow; the capacity is a power of two.
final class SPSCRing: @unchecked Sendable {
    let capacity: Int
    private let mask: Int
    private let storage: UnsafeMutablePointer<Int16>
    /// The storage's own mapping (nil: it came from the allocator).
    private let mapping: UnsafeMutableRawPointer?
    private let mappedBytes: Int
    /// Total samples written (producer stores, consumer loads).
    private let written = Atomic<Int>(0)
    /// Total samples read (consumer stores, producer loads).
    private let consumed = Atomic<Int>(0)

    /// onDemand: memory becomes resident only as samples are written, and
    /// `releaseIdleMemory` gives it back; for a large ring written by the network loop (the
    /// speaker's queue: a minute of audio, 2 MiB, that mostly holds a few seconds). Else
    /// every page is touched here, so an audio thread that writes never faults one in.
    init(minimumCapacity: Int, onDemand: Bool = false) {
        var size = 64
        while size < minimumCapacity { size <<= 1 }
        capacity = size
        mask = size - 1
        let bytes = size * MemoryLayout<Int16>.stride
        let mapped = onDemand ? mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : nil
        if let mapped, mapped != MAP_FAILED {
            // Anonymous pages read as zeros until written: initialized without a touch.
            mapping = mapped
            mappedBytes = bytes
            storage = mapped.bindMemory(to: Int16.self, capacity: size)
        } else {
            mapping = nil
            mappedBytes = 0
            storage = .allocate(capacity: size)
            storage.initialize(repeating: 0, count: size)
        }
    }

    deinit {
        if let mapping { munmap(mapping, mappedBytes) } else { storage.deallocate() }
    }

    /// Producer, on an on-demand ring: while it is empty, returns its memory to the
    /// system (the next writes fault fresh zero pages in). An empty ring holds nothing
    /// the consumer could still be copying: it stores its position only after the copy.
    func releaseIdleMemory() {
        guard let mapping, count == 0 else { return }
        _ = madvise(mapping, mappedBytes, MADV_DONTNEED)
    }

    /// Bytes of an on-demand ring's storage resident in memory now (nil for another ring,
    /// or when the system cannot tell).
    var residentBytes: Int? {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let mapping, page > 0 else { return nil }
        var vec = [UInt8](repeating: 0, count: (mappedBytes + page - 1) / page)
        guard mincore(mapping, mappedBytes, &vec) == 0 else { return nil }
        return vec.reduce(0) { $0 + Int($1 & 1) } * page
    }

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
