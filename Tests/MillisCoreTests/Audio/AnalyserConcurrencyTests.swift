import Foundation
import Synchronization
import XCTest
@testable import MillisCore

/// The audio side of an analyser never waits for its readers, and readers never see a
/// half-written history. Timings would prove neither on a busy machine: counters do.
final class AnalyserConcurrencyTests: XCTestCase {
    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Under the former design the writer blocked on the lock the reader held for its
    /// whole read, so it completed no block before the reader let go.
    func testAWriterCompletesEveryBlockWhileAReaderIsHeldInsideItsRead() throws {
        let analyser = Analyser()
        try analyser.setFFTSize(32_768)
        let blocks = 100
        let completed = Counter()
        let completedDuringHold = Counter()
        let holds = Counter()
        let held = DispatchSemaphore(value: 0)
        let writerDone = DispatchSemaphore(value: 0)
        let writerExited = DispatchSemaphore(value: 0)
        let readerDone = DispatchSemaphore(value: 0)
        completedDuringHold.value.store(-1, ordering: .relaxed)

        analyser.duringSnapshot = {
            guard holds.value.add(1, ordering: .relaxed).newValue == 1 else { return }
            held.signal()
            // 100 ms at least, and on until the writer is through (a loaded machine may
            // start its thread late), 5 s at most: a writer waiting for this reader is
            // never through.
            usleep(100_000)
            _ = writerDone.wait(timeout: .now() + 5)
            completedDuringHold.value.store(completed.value.load(ordering: .relaxed), ordering: .relaxed)
        }
        Thread {
            var out = [Float](repeating: 0, count: 16_384)
            _ = out.withUnsafeMutableBufferPointer { analyser.getFloatFrequencyData($0) }
            readerDone.signal()
        }.start()
        held.wait()

        let block = [Int16](repeating: 1000, count: 160)
        Thread {
            for _ in 0..<blocks {
                analyser.write(block)
                completed.value.add(1, ordering: .relaxed)
            }
            writerDone.signal()
            writerExited.signal()
        }.start()
        readerDone.wait()
        analyser.duringSnapshot = nil
        // The writer may still be on its way in the former design: let it finish before
        // the analyser goes away.
        writerExited.wait()

        XCTAssertEqual(completedDuringHold.value.load(ordering: .relaxed), blocks,
                       "the writer must complete every block while the reader is held")
        XCTAssertEqual(analyser.droppedWrites, 0)
        XCTAssertEqual(analyser.snapshotRetries, 0, "\(blocks * 160) samples do not reach a 32768-sample copy in a 65536-sample ring")
        XCTAssertEqual(holds.value.load(ordering: .relaxed), 1)

        let recent = timeDomain(analyser)
        XCTAssertEqual(recent.suffix(blocks * 160).filter { $0 != 1000 / 32_768 }.count, 0, "every block written")
        XCTAssertEqual(recent.dropLast(blocks * 160).filter { $0 != 0 }.count, 0)
    }

    /// A copy made before writes that cannot reach its slots stands; one a writer may have
    /// overtaken is made again, so the reader returns the newest samples, whole.
    func testAReaderOvertakenBetweenItsCopyAndItsCheckCopiesAgain() throws {
        let analyser = Analyser()
        try analyser.setFFTSize(32_768)
        analyser.write([Int16](repeating: 100, count: 32_768))

        // 160 samples on: the copy already made is still the newest 32768 when it began.
        let small = Counter()
        analyser.duringSnapshot = {
            if small.value.add(1, ordering: .relaxed).newValue == 1 { analyser.write([Int16](repeating: 200, count: 160)) }
        }
        XCTAssertEqual(timeDomain(analyser).filter { $0 != 100 / 32_768 }.count, 0)
        XCTAssertEqual(analyser.snapshotRetries, 0)
        XCTAssertEqual(small.value.load(ordering: .relaxed), 1)

        // 40000 more: the writer passed the slots the copy came from.
        let large = Counter()
        analyser.duringSnapshot = {
            if large.value.add(1, ordering: .relaxed).newValue == 1 {
                let block = [Int16](repeating: 300, count: 20_000)
                analyser.write(block)
                analyser.write(block)
            }
        }
        XCTAssertEqual(timeDomain(analyser).filter { $0 != 300 / 32_768 }.count, 0)
        XCTAssertEqual(analyser.snapshotRetries, 1)
        XCTAssertEqual(large.value.load(ordering: .relaxed), 2, "one copy overtaken, one that stands")
        analyser.duringSnapshot = nil
        XCTAssertEqual(analyser.droppedWrites, 0)
    }

    /// One 160-sample block per write, as the audio threads write.
    func testReadersRacingAnAudioThreadSeeWholeBlocksInOrder() {
        raceReaders(blocksPerWrite: 1, writes: 30_000)
    }

    /// 200 blocks per write, so that the writer overtakes readers' copies of 32768
    /// samples and the retries are exercised against real concurrency.
    func testReadersRacingAWriterThatOvertakesThemSeeWholeBlocksInOrder() {
        raceReaders(blocksPerWrite: 200, writes: 300)
    }

    /// A writer writes 160-sample blocks of one value each, 1, 2, 3, ...; two readers copy
    /// the time domain meanwhile. Every copy must be whole blocks with consecutive values,
    /// oldest first, ending on a block boundary: never a torn or half-published block.
    private func raceReaders(blocksPerWrite: Int, writes: Int, file: StaticString = #filePath, line: UInt = #line) {
        let analyser = Analyser()
        let writerDone = Atomic<Bool>(false)
        let reads = Counter()
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 3) { worker in
            if worker == 0 {
                var block = [Float](repeating: 0, count: 160 * blocksPerWrite)
                var value: Float = 0
                for _ in 0..<writes {
                    for b in 0..<blocksPerWrite {
                        value += 1
                        for i in 0..<160 { block[b * 160 + i] = value }
                    }
                    block.withUnsafeBufferPointer { analyser.write(floats: $0) }
                }
                writerDone.store(true, ordering: .releasing)
            } else {
                var out = [Float](repeating: 0, count: 32_768)
                var round = 0
                // At least one read, however late this thread starts.
                repeat {
                    round += 1
                    if worker == 1 { try? analyser.setFFTSize(round % 4 == 0 ? 2048 : 32_768) }
                    let count = out.withUnsafeMutableBufferPointer { analyser.getFloatTimeDomainData($0) }
                    reads.value.add(1, ordering: .relaxed)
                    if let problem = Self.tornBlock(in: out.prefix(count)) {
                        failures.withLock { $0.append(problem) }
                        return
                    }
                } while !writerDone.load(ordering: .acquiring)
            }
        }
        XCTAssertEqual(failures.withLock { $0 }, [], file: file, line: line)
        XCTAssertGreaterThan(reads.value.load(ordering: .relaxed), 0, file: file, line: line)
        XCTAssertEqual(analyser.droppedWrites, 0, file: file, line: line)
    }

    /// nil when `samples` are runs of 160 equal values (the oldest run may be cut short),
    /// each one more than the one before, 0 standing for the blocks before the first.
    private static func tornBlock(in samples: ArraySlice<Float>) -> String? {
        var runs: [(value: Float, length: Int)] = []
        for x in samples {
            if let last = runs.last, last.value == x {
                runs[runs.count - 1].length += 1
            } else {
                runs.append((x, 1))
            }
        }
        if runs.count == 1, runs[0].value == 0 { return nil }
        for (i, run) in runs.enumerated() {
            if i > 0 && run.value != runs[i - 1].value + 1 {
                return "block \(run.value) follows block \(runs[i - 1].value)"
            }
            if run.length > 160 && run.value != 0 || i > 0 && run.length != 160 {
                return "block \(run.value) has \(run.length) samples (run \(i) of \(runs.count))"
            }
        }
        return nil
    }

    private func timeDomain(_ analyser: Analyser) -> [Float] {
        var out = [Float](repeating: .nan, count: analyser.fftSize)
        let written = out.withUnsafeMutableBufferPointer { analyser.getFloatTimeDomainData($0) }
        return Array(out.prefix(written))
    }
}
