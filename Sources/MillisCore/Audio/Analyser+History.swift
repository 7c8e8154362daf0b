import Synchronization

extension Analyser {
    /// The samples written to an analyser, shared between its writer and its readers
    /// without a lock: a reader computing a 32768-point FFT under a lock the audio thread
    /// also took held that thread up for milliseconds, longer than its 5 ms period.
    ///
    /// A sequence lock over a ring: the writer announces how far it is about to write,
    /// writes, then publishes; a reader copies from what was published and then checks
    /// the announcement to see whether a writer reached the slots it copied meanwhile,
    /// copying again if so. The writer therefore never waits for a reader, and a reader
    /// computes on its own copy, outside anything the writer touches.
    ///
    /// One write at a time: a write that starts while another is under way on a second
    /// thread is dropped and counted in `collisions`, because waiting for it would put a
    /// wait on the audio thread. Inside the library each analyser has one writer at a time
    /// (the capture or playback thread in device mode; `sendAudio`'s caller or the network
    /// loop in application mode).
    final class History: @unchecked Sendable {
        /// Twice the longest read, so that a reader copying the newest 32768 samples is
        /// overtaken only if another 32768 (2 s at 16 kHz) arrive during its copy.
        static let capacity = 2 * Analyser.historyCapacity
        private static let mask = capacity - 1

        /// Float bit patterns. Atomic, relaxed, so that a copy racing with a write is not a
        /// data race (a torn read is caught by the announcement, not prevented): no cost
        /// over plain loads and stores, and ThreadSanitizer sees the protocol as it is.
        private let slots: UnsafeMutablePointer<Atomic<UInt32>>
        /// Samples written since creation; sample p lives in slot p & mask until sample
        /// p + capacity is written. Positions below 0 were never written.
        private let published = Atomic<Int>(0)
        /// The end of the write under way, stored before its samples: a reader that copied
        /// position p got the sample published for it unless this exceeds p + capacity.
        private let announced = Atomic<Int>(0)
        private let writing = Atomic<Bool>(false)
        /// Writes dropped because another write was under way on another thread.
        let collisions = Atomic<Int>(0)

        init() {
            slots = .allocate(capacity: Self.capacity)
            for i in 0..<Self.capacity { (slots + i).initialize(to: Atomic(0)) }
        }

        deinit {
            slots.deinitialize(count: Self.capacity)
            slots.deallocate()
        }

        /// How many samples have been written: the position the next one will take.
        var count: Int { published.load(ordering: .acquiring) }

        /// Runs on audio threads: no lock, no allocation, no wait; a flag taken with one
        /// compare-and-exchange keeps a second writer out.
        func append<Sample>(_ samples: UnsafeBufferPointer<Sample>, _ convert: (Sample) -> Float) {
            let limit = Analyser.historyCapacity
            // Older samples than any read can reach would only cost time to store.
            let source = samples.count > limit ? UnsafeBufferPointer(rebasing: samples.suffix(limit)) : samples
            guard !source.isEmpty else { return }
            guard writing.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
                collisions.add(1, ordering: .relaxed)
                return
            }
            let start = published.load(ordering: .relaxed)
            let end = start + source.count
            announced.store(end, ordering: .relaxed)
            // Orders the announcement before the samples: a reader whose copy saw any of
            // them sees the announcement after its own acquiring fence.
            atomicMemoryFence(ordering: .releasing)
            for i in 0..<source.count {
                slots[(start + i) & Self.mask].store(convert(source[i]).bitPattern, ordering: .relaxed)
            }
            published.store(end, ordering: .releasing)
            writing.store(false, ordering: .releasing)
        }

        /// Copies the `out.count` newest samples, oldest first, reading positions below
        /// `floor` (and never-written ones) as 0. Returns false when a writer overtook the
        /// copy, which is then partly torn and must be made again.
        /// `duringCopy` runs between the copy and its check (tests widen the race with it).
        func copyNewest(into out: UnsafeMutableBufferPointer<Float>, floor: Int, duringCopy: (() -> Void)?) -> Bool {
            let end = published.load(ordering: .acquiring)
            let start = end - out.count
            let zeroed = min(out.count, max(0, floor - start))
            for i in 0..<zeroed { out[i] = 0 }
            for i in zeroed..<out.count {
                out[i] = Float(bitPattern: slots[(start + i) & Self.mask].load(ordering: .relaxed))
            }
            duringCopy?()
            atomicMemoryFence(ordering: .acquiring)
            return announced.load(ordering: .relaxed) <= start + Self.capacity
        }
    }
}
