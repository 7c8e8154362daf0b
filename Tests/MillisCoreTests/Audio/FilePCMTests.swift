import Foundation
import XCTest
@testable import MillisCore

#if canImport(Glibc)
import Glibc
#endif

/// FilePCM keeps a device's time: its assertions bound what depends on the clock by
/// the time the test measured around each call, so they hold on a loaded machine too.
final class FilePCMTests: ScratchDirectoryTestCase {

    /// 16 kHz frames in `nanoseconds`, rounded up, plus one for the clock's own rounding.
    private func frames(_ from: UInt64, _ to: UInt64) -> Int {
        Int((to - from) / 62_500) + 1
    }

    private func read(_ pcm: FilePCM, frames: Int) -> (rc: Int, samples: [Int16]) {
        var buffer = [Int16](repeating: 12_345, count: frames)
        let rc = buffer.withUnsafeMutableBytes { pcm.read(into: $0.baseAddress!, frames: frames) }
        return (rc, rc > 0 ? Array(buffer[0..<rc]) : [])
    }

    private func write(_ pcm: FilePCM, _ samples: [Int16]) -> Int {
        samples.withUnsafeBytes { pcm.write($0.baseAddress!, frames: samples.count) }
    }

    private func inputFile(_ samples: [Int16], name: String = "in.wav") throws -> String {
        let path = dir.path(name)
        try TestFiles.writeWAV(samples, to: path)
        return path
    }

    // MARK: Input

    func testFastInputReadsTheFileThenZerosAndEndsExactlyAtItsEnd() throws {
        let samples = (0..<1000).map { Int16($0 * 13 - 6500) }
        let pcm = try FilePCM(inputPath: try inputFile(samples), fast: true, periodMilliseconds: 20)
        defer { pcm.close() }
        XCTAssertEqual(pcm.inputFrames, 1000)
        XCTAssertEqual([pcm.rate, pcm.channels, pcm.periodFrames, pcm.bufferFrames], [16_000, 1, 320, 2560])
        pcm.start()
        var got: [Int16] = []
        for k in 0..<3 {
            let r = read(pcm, frames: 320)
            XCTAssertEqual(r.rc, 320, "read \(k)")
            got += r.samples
            XCTAssertFalse(pcm.ended.load(ordering: .acquiring), "ended after \(got.count) of 1000")
        }
        let last = read(pcm, frames: 320)
        XCTAssertEqual(last.rc, 320)
        got += last.samples
        XCTAssertTrue(pcm.ended.load(ordering: .acquiring))
        XCTAssertNil(TestFiles.mismatch(got, samples + [Int16](repeating: 0, count: 280)))
    }

    func testEndedIsSetByTheReadThatTakesTheLastSample() throws {
        let samples = [Int16](repeating: 3, count: 960)
        let pcm = try FilePCM(inputPath: try inputFile(samples), fast: true, periodMilliseconds: 20)
        defer { pcm.close() }
        pcm.start()
        XCTAssertEqual(read(pcm, frames: 640).rc, 640)
        XCTAssertFalse(pcm.ended.load(ordering: .acquiring))
        XCTAssertEqual(read(pcm, frames: 320).samples, [Int16](repeating: 3, count: 320))
        XCTAssertTrue(pcm.ended.load(ordering: .acquiring), "the file is exhausted")
    }

    func testFastInputGivesAtMostABufferPerRead() throws {
        let samples = (0..<10_000).map { Int16(truncatingIfNeeded: $0) }
        let pcm = try FilePCM(inputPath: try inputFile(samples), fast: true, periodMilliseconds: 20)
        defer { pcm.close() }
        XCTAssertEqual(pcm.available(), 2560)
        let r = read(pcm, frames: 5000)
        XCTAssertEqual(r.rc, 2560)
        XCTAssertNil(TestFiles.mismatch(r.samples, samples[0..<2560]))
        XCTAssertEqual(pcm.delay(), 0)
    }

    func testAfterTheFileSilenceComesInRealTime() throws {
        let samples = [Int16](repeating: 9, count: 320)
        let pcm = try FilePCM(inputPath: try inputFile(samples), fast: true, periodMilliseconds: 20)
        defer { pcm.close() }
        pcm.start()
        XCTAssertEqual(read(pcm, frames: 320).rc, 320)
        let endedAt = MonotonicClock.now()
        XCTAssertTrue(pcm.ended.load(ordering: .acquiring))
        usleep(30_000)
        var zeros = 0
        for _ in 0..<3 {
            let r = read(pcm, frames: 320)
            if r.rc == -Int(EAGAIN) { continue }
            XCTAssertGreaterThan(r.rc, 0)
            XCTAssertEqual(r.samples, [Int16](repeating: 0, count: r.rc))
            zeros += r.rc
        }
        let now = MonotonicClock.now()
        XCTAssertGreaterThan(zeros, 0, "30 ms after the end")
        XCTAssertLessThanOrEqual(zeros, frames(endedAt, now), "no faster than the clock")
    }

    func testRealtimeInputFollowsTheClock() throws {
        let samples = (0..<16_000).map { Int16(truncatingIfNeeded: $0 * 7 + 1) }
        let pcm = try FilePCM(inputPath: try inputFile(samples), fast: false, periodMilliseconds: 20)
        defer { pcm.close() }
        let before = MonotonicClock.now()
        pcm.start()
        let first = pcm.available()
        let after = MonotonicClock.now()
        XCTAssertGreaterThanOrEqual(first, 0)
        XCTAssertLessThanOrEqual(first, frames(before, after))
        if after - before < 39_000_000 {
            XCTAssertLessThan(first, 2 * pcm.periodFrames)
        }

        var got: [Int16] = []
        for _ in 0..<4 {
            usleep(15_000)
            let r = read(pcm, frames: 320)
            if r.rc == -Int(EAGAIN) { continue }
            XCTAssertGreaterThan(r.rc, 0)
            got += r.samples
            XCTAssertLessThanOrEqual(got.count, frames(before, MonotonicClock.now()), "ahead of the clock")
        }
        XCTAssertGreaterThan(got.count, 0)
        XCTAssertNil(TestFiles.mismatch(got, samples[0..<got.count]), "the file, in order")
        XCTAssertFalse(pcm.ended.load(ordering: .acquiring))
    }

    /// Nothing has been captured before the stream starts: its clock is not running.
    func testNothingIsDueBeforeStart() throws {
        let pcm = try FilePCM(inputPath: try inputFile([Int16](repeating: 1, count: 1000)), fast: false, periodMilliseconds: 20)
        defer { pcm.close() }
        XCTAssertEqual(pcm.delay(), 0, "frames 'captured' before start")
    }

    func testInputResampledFromAnotherRate() throws {
        let path = dir.path("in48k.wav")
        try TestFiles.writeWAV([Int16](repeating: 1000, count: 4800), rate: 48_000, to: path)
        let pcm = try FilePCM(inputPath: path, fast: true, periodMilliseconds: 10)
        defer { pcm.close() }
        XCTAssertEqual(pcm.inputFrames, 1600)
    }

    // MARK: Output

    func testOutputCommitsWhatPlayedDropsWhatDidNotAndClosesWithTheRest() throws {
        let path = dir.path("out.wav")
        let pcm = try FilePCM(outputPath: path, periodMilliseconds: 20)
        XCTAssertEqual(pcm.bufferFrames, 960)
        let a = (0..<1280).map { Int16($0 + 1) }
        let b = (0..<500).map { Int16(-1 - $0) }

        let before = MonotonicClock.now()
        pcm.start()
        let after = MonotonicClock.now()
        XCTAssertEqual(write(pcm, a), 960, "3 periods of 4 fit")
        let wroteA = MonotonicClock.now()
        usleep(30_000)
        var silenced = false
        let drop0 = MonotonicClock.now()
        pcm.dropAndPrepare { silenced = true }
        let drop1 = MonotonicClock.now()
        XCTAssertTrue(silenced)
        XCTAssertEqual(pcm.delay(), 0, "nothing pending after the drop")
        usleep(10_000)
        let write0 = MonotonicClock.now()
        XCTAssertEqual(write(pcm, b), 500)
        let write1 = MonotonicClock.now()
        XCTAssertEqual(pcm.delay(), 500)
        pcm.close()
        XCTAssertNil(pcm.outputFailure)
        pcm.close()

        let wav = try TestFiles.readWAV(path)
        XCTAssertEqual([wav.formatTag, wav.channels, wav.rate, wav.bits], [1, 1, 16_000, 16])
        // The file: silence the clock played before A (if any), the part of A that played
        // before the drop, silence until B was written, then all of B (closed).
        let s = wav.samples
        let z0 = s.firstIndex { $0 != 0 } ?? s.count
        var p = 0
        while p < 960, z0 + p < s.count, s[z0 + p] == a[p] { p += 1 }
        var bStart = z0 + p
        while bStart < s.count, s[bStart] == 0 { bStart += 1 }
        XCTAssertNil(TestFiles.mismatch(s[bStart...], b), "all of B at the end, written at close")
        XCTAssertLessThanOrEqual(z0, frames(before, wroteA))
        let droppedAt = z0 + p
        if p < 960 {
            XCTAssertGreaterThanOrEqual(droppedAt, frames(after, drop0) - 2, "A played until the drop")
        }
        XCTAssertLessThanOrEqual(droppedAt, frames(before, drop1), "only what played was kept")
        XCTAssertGreaterThanOrEqual(bStart, frames(after, write0) - 2, "the pause is silence in the file")
        XCTAssertLessThanOrEqual(bStart, frames(before, write1))
        XCTAssertGreaterThan(p, 0, "30 ms of A played")
    }

    func testOutputTakesNoMoreThanItsBufferAhead() throws {
        let path = dir.path("full.wav")
        let pcm = try FilePCM(outputPath: path, periodMilliseconds: 20)
        let before = MonotonicClock.now()
        pcm.start()
        XCTAssertEqual(write(pcm, [Int16](repeating: 1, count: 960)), 960)
        let more = write(pcm, [Int16](repeating: 2, count: 960))
        let elapsed = frames(before, MonotonicClock.now())
        XCTAssertTrue(more == -Int(EAGAIN) || (more > 0 && more <= elapsed), "\(more) frames into a full buffer")
        pcm.close()
        // Silence the clock played before the first write, all of the first, then (after
        // silence, if the clock ran past it) what the second write took.
        let s = try TestFiles.readWAV(path).samples
        let z0 = s.firstIndex { $0 != 0 } ?? s.count
        XCTAssertNil(TestFiles.mismatch(s[z0..<min(s.count, z0 + 960)], [Int16](repeating: 1, count: 960)))
        let twos = s[min(s.count, z0 + 960)...].drop { $0 == 0 }
        XCTAssertNil(TestFiles.mismatch(twos, [Int16](repeating: 2, count: max(0, more))))
    }

    func testOpusOutputIsReadable() throws {
        let path = dir.path("out.opus")
        let pcm = try FilePCM(outputPath: path, periodMilliseconds: 20)
        let tone = TestFiles.int16(TestFiles.tone(frequency: 1000, dBFS: -12, count: 960))
        XCTAssertEqual(write(pcm, tone), 960)
        pcm.close()
        XCTAssertNil(pcm.outputFailure)
        let decoded = try AudioFileReader.read(path: path)
        XCTAssertGreaterThanOrEqual(decoded.count, 950)
    }

    // MARK: Misuse and errors

    func testWrongDirectionIsEBADF() throws {
        let input = try FilePCM(inputPath: try inputFile([1, 2, 3]), fast: true, periodMilliseconds: 20)
        defer { input.close() }
        XCTAssertEqual(write(input, [1]), -Int(EBADF))
        let output = try FilePCM(outputPath: dir.path("o.wav"), periodMilliseconds: 20)
        defer { output.close() }
        XCTAssertEqual(read(output, frames: 1).rc, -Int(EBADF))
        XCTAssertEqual(output.inputFrames, 0)
    }

    func testMissingInputIsAFileError() {
        let path = dir.path("nope.wav")
        let error = TestFiles.millisError { () throws(MillisError) in
            try FilePCM(inputPath: path, fast: false, periodMilliseconds: 20)
        }
        XCTAssertEqual(error?.status, .file)
        XCTAssertTrue(error?.message.contains(path) ?? false)
    }

    func testOutputInAMissingDirectoryOrWithAnUnknownExtension() {
        let missing = TestFiles.millisError { () throws(MillisError) in
            try FilePCM(outputPath: self.dir.path("no/out.wav"), periodMilliseconds: 20)
        }
        XCTAssertEqual(missing?.status, .file)
        let opus = TestFiles.millisError { () throws(MillisError) in
            try FilePCM(outputPath: self.dir.path("no/out.opus"), periodMilliseconds: 20)
        }
        XCTAssertEqual(opus?.status, .file)
        XCTAssertTrue(opus?.message.contains(dir.path("no/out.opus")) ?? false, opus?.message ?? "")
        let unknown = TestFiles.millisError { () throws(MillisError) in
            try FilePCM(outputPath: self.dir.path("out.aiff"), periodMilliseconds: 20)
        }
        XCTAssertEqual(unknown?.status, .invalidArgument)
        XCTAssertTrue(unknown?.message.contains("audio output file") ?? false)
    }
}
