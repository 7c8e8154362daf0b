import Foundation
import XCTest
@testable import MillisCore

final class RecorderTests: ScratchDirectoryTestCase {
    private let ms: UInt64 = 1_000_000

    private func write(_ ring: TimedSampleRing, _ samples: [Int16], at time: UInt64) {
        samples.withUnsafeBufferPointer { ring.write($0, at: time) }
    }

    /// 320 samples (20 ms) of chunk `k`'s own value.
    private func chunk(_ k: Int, sign: Int16 = 1) -> [Int16] {
        [Int16](repeating: sign * Int16(k + 1), count: 320)
    }

    private func lines(_ path: String) throws -> [String] {
        let text = String(decoding: try TestFiles.read(path), as: UTF8.self)
        XCTAssertTrue(text.hasSuffix("\n"), "the last line ends with a newline")
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    // MARK: Paths

    func testTimelinePathReplacesTheExtension() {
        XCTAssertEqual(Recorder.timelinePath(for: "r.wav"), "r.jsonl")
        XCTAssertEqual(Recorder.timelinePath(for: "/a/call.opus"), "/a/call.jsonl")
        XCTAssertEqual(Recorder.timelinePath(for: "/a.b/c.d.ogg"), "/a.b/c.d.jsonl")
        XCTAssertEqual(Recorder.timelinePath(for: "/a.b/call"), "/a.b/call.jsonl")
        XCTAssertEqual(Recorder.timelinePath(for: "call"), "call.jsonl")
    }

    // MARK: Layout

    func testStereoPutsUserLeftAndAgentRightOnTheRecordingsClock() throws {
        let path = dir.path("r.wav")
        let recorder = try Recorder(path: path, mono: false, title: "layout")
        XCTAssertEqual(recorder.timelinePath, dir.path("r.jsonl"))
        let t0 = recorder.startedAt
        for k in 0..<50 { write(recorder.user, chunk(k), at: t0 + UInt64(k) * 20 * ms) }
        for k in 0..<10 { write(recorder.agent, chunk(k, sign: -100), at: t0 + 500 * ms + UInt64(k) * 20 * ms) }
        XCTAssertNil(recorder.finishAndWait())

        let wav = try TestFiles.readWAV(path)
        XCTAssertEqual([wav.channels, wav.rate, wav.bits], [2, 16_000, 16])
        let left = wav.channel(0), right = wav.channel(1)
        XCTAssertEqual(left.count, 16_000)
        XCTAssertNil(TestFiles.mismatch(left, (0..<16_000).map { Int16($0 / 320 + 1) }), "user chunks in order from sample 0")
        let agent = (0..<3200).map { -100 * Int16($0 / 320 + 1) }
        XCTAssertNil(TestFiles.mismatch(right, [Int16](repeating: 0, count: 8000) + agent + [Int16](repeating: 0, count: 4800)),
                     "agent audio from sample 8000 (500 ms)")
    }

    /// The first chunk of a side has no previous chunk to follow: it belongs at its time
    /// even when that is within the jitter tolerance of sample 0.
    func testFirstChunkOfASideIsPlacedAtItsTime() throws {
        let path = dir.path("first.wav")
        let recorder = try Recorder(path: path, mono: false, title: "")
        let t0 = recorder.startedAt
        for k in 0..<25 { write(recorder.user, chunk(k), at: t0 + UInt64(k) * 20 * ms) }
        write(recorder.agent, chunk(0, sign: -1), at: t0 + 250 * ms)
        XCTAssertNil(recorder.finishAndWait())
        let right = try TestFiles.readWAV(path).channel(1)
        XCTAssertEqual(right.firstIndex { $0 != 0 }, 4000, "the agent's first sample, heard 250 ms in")
    }

    func testAgentBeyondTheToleranceIsPlacedAtItsTime() throws {
        let path = dir.path("late.wav")
        let recorder = try Recorder(path: path, mono: false, title: "")
        let t0 = recorder.startedAt
        write(recorder.user, chunk(0), at: t0)
        write(recorder.agent, chunk(0, sign: -1), at: t0 + 1200 * ms)
        XCTAssertNil(recorder.finishAndWait())
        let wav = try TestFiles.readWAV(path)
        let right = wav.channel(1)
        XCTAssertEqual(right.count, 19_200 + 320)
        XCTAssertEqual(right.firstIndex { $0 != 0 }, 19_200)
        XCTAssertNil(TestFiles.mismatch(right[19_200...], chunk(0, sign: -1)))
        XCTAssertNil(TestFiles.mismatch(wav.channel(0), chunk(0) + [Int16](repeating: 0, count: 19_200)))
    }

    func testGapBeyondTheToleranceIsSilenceOfItsLength() throws {
        let path = dir.path("gap.wav")
        let recorder = try Recorder(path: path, mono: false, title: "")
        let t0 = recorder.startedAt
        for k in 0..<10 { write(recorder.user, chunk(k), at: t0 + UInt64(k) * 20 * ms) }
        // 2 s of nothing, then ten more.
        for k in 10..<20 { write(recorder.user, chunk(k), at: t0 + 2000 * ms + UInt64(k) * 20 * ms) }
        XCTAssertNil(recorder.finishAndWait())

        let left = try TestFiles.readWAV(path).channel(0)
        XCTAssertEqual(left.count, 35_200 + 3200)
        XCTAssertNil(TestFiles.mismatch(left[0..<3200], (0..<10).flatMap { chunk($0) }))
        let resumed = left[3200...].firstIndex { $0 != 0 } ?? -1
        XCTAssertLessThanOrEqual(abs(resumed - 35_200), 1, "silence of \(resumed - 3200) samples for a 2 s gap")
        XCTAssertNil(TestFiles.mismatch(left[35_200...], (10..<20).flatMap { chunk($0) }))
    }

    func testChunksWithinTheToleranceFollowContiguously() throws {
        let path = dir.path("jitter.wav")
        let recorder = try Recorder(path: path, mono: false, title: "")
        let t0 = recorder.startedAt
        // Nominal 20 ms steps, with chunk 3 early by 15 ms, chunk 5 late by 450 ms, chunk 6
        // back on time (before chunk 5's time), chunk 8 exactly 0.5 s after the cursor.
        var offsets = (0..<12).map { Int64($0) * 20 }
        offsets[3] -= 15
        offsets[5] += 450
        offsets[8] = 8 * 20 + 500
        for (k, offset) in offsets.enumerated() {
            write(recorder.user, chunk(k), at: t0 + UInt64(offset) * ms)
        }
        XCTAssertNil(recorder.finishAndWait())
        let left = try TestFiles.readWAV(path).channel(0)
        XCTAssertNil(TestFiles.mismatch(left, (0..<12).flatMap { chunk($0) }), "no gaps, nothing overwritten")
    }

    func testMonoMixesBySumClamped() throws {
        let path = dir.path("mono.wav")
        let recorder = try Recorder(path: path, mono: true, title: "")
        let t0 = recorder.startedAt
        write(recorder.user, [100, 30_000, -30_000, 32_767, -5, 0], at: t0)
        write(recorder.agent, [-50, 10_000, -10_000, 1, 5, -32_768], at: t0)
        XCTAssertNil(recorder.finishAndWait())
        let wav = try TestFiles.readWAV(path)
        XCTAssertEqual(wav.channels, 1)
        XCTAssertEqual(wav.samples, [50, 32_767, -32_768, 32_767, 0, -32_768])
    }

    // MARK: Timeline

    func testTimelineHoldsTheLinesThenTheEnd() throws {
        let path = dir.path("r.wav")
        let recorder = try Recorder(path: path, mono: false, title: "")
        let t0 = recorder.startedAt
        let given = [#"{"a":1}"#, #"{"b":"two"}"#, #"{"c":[3]}"#]
        recorder.line(given[0])
        for k in 0..<50 { write(recorder.user, chunk(k), at: t0 + UInt64(k) * 20 * ms) }
        recorder.line(given[1])
        for k in 0..<7 { write(recorder.agent, chunk(k), at: t0 + 600 * ms + UInt64(k) * 20 * ms) }
        recorder.line(given[2])
        XCTAssertNil(recorder.finishAndWait())

        let all = try lines(recorder.timelinePath)
        XCTAssertEqual(Array(all.dropLast()), given)
        let end = try JSONParser.parse(all.last ?? "")
        guard case .object(let members) = end else { return XCTFail("end line: \(all.last ?? "")") }
        XCTAssertEqual(members.map(\.key), ["t", "type", "duration", "user_samples", "agent_samples", "dropped_samples"])
        XCTAssertEqual(end["type"], .string("end"))
        XCTAssertEqual(end["user_samples"], .number("16000"))
        XCTAssertEqual(end["agent_samples"], .number("2240"))
        XCTAssertEqual(end["dropped_samples"], .number("0"))
        XCTAssertEqual(end["duration"], .number("1.000000"), "16000 frames")
        let t = try XCTUnwrap(end["t"]?.doubleValue)
        XCTAssertGreaterThanOrEqual(t, 0)
    }

    func testFinishAndWaitTwiceAndFromManyThreads() throws {
        let recorder = try Recorder(path: dir.path("twice.wav"), mono: false, title: "")
        write(recorder.user, chunk(0), at: recorder.startedAt)
        let results = Locked<[MillisError?]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let r = recorder.finishAndWait()
            results.withLock { $0.append(r) }
        }
        XCTAssertEqual(results.withLock { $0 }, [nil, nil, nil, nil])
        XCTAssertNil(recorder.finishAndWait())
        XCTAssertTrue(recorder.isFinishing)
        let ends = try lines(recorder.timelinePath).filter { $0.contains(#""type":"end""#) }
        XCTAssertEqual(ends.count, 1, "one end line")
        XCTAssertEqual(try TestFiles.readWAV(dir.path("twice.wav")).samples.count, 640)
    }

    // MARK: Failures

    func testMissingDirectoryIsAFileError() {
        let path = dir.path("missing/r.wav")
        let error = TestFiles.millisError { () throws(MillisError) in try Recorder(path: path, mono: false, title: "") }
        XCTAssertEqual(error?.status, .file)
        XCTAssertTrue(error?.message.contains(dir.path("missing/")) ?? false, error?.message ?? "")
    }

    func testAudioFileThatCannotBeCreatedLeavesNoTimeline() throws {
        // The audio path is a directory: the timeline is created first, then removed.
        let path = dir.path("taken.wav")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        let error = TestFiles.millisError { () throws(MillisError) in try Recorder(path: path, mono: false, title: "") }
        XCTAssertEqual(error?.status, .file)
        XCTAssertTrue(error?.message.contains(path) ?? false, error?.message ?? "")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path("taken.jsonl")))
    }

    func testUnknownExtensionIsAnInvalidArgumentAndCreatesNothing() throws {
        let error = TestFiles.millisError { () throws(MillisError) in
            try Recorder(path: self.dir.path("r.mp3"), mono: false, title: "")
        }
        XCTAssertEqual(error?.status, .invalidArgument)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.url.path), [])
    }

    // MARK: Ogg Opus

    /// Stopped before any audio: the Ogg Opus file must still be completed (see
    /// OggOpusFileWriterTests.testFinishingWithoutAudioGivesAValidFile). Run in a child.
    func testOpusRecordingStoppedAtOnce() throws {
        let name = "RecorderTests/testOpusRecordingStoppedAtOnce"
        // libopusenc's abort here depends on the process's state: several runs make it certain.
        guard TestFiles.isChild(name) else { return try TestFiles.assertChildPasses(name, runs: 8) }
        for k in 0..<4 {
            let recorder = try Recorder(path: dir.path("quick\(k).opus"), mono: k % 2 == 0, title: "")
            recorder.line(#"{"type":"x"}"#)
            XCTAssertNil(recorder.finishAndWait())
            XCTAssertEqual(try lines(recorder.timelinePath).count, 2)
        }
    }

    func testOpusRecordingDecodesToBothSides() throws {
        let path = dir.path("r.opus")
        let recorder = try Recorder(path: path, mono: false, title: "call")
        let t0 = recorder.startedAt
        let tone = TestFiles.int16(TestFiles.tone(frequency: 1000, dBFS: -12, count: 16_000))
        for k in 0..<50 {
            write(recorder.user, Array(tone[(320 * k)..<(320 * k + 320)]), at: t0 + UInt64(k) * 20 * ms)
        }
        XCTAssertNil(recorder.finishAndWait())
        let bytes = try TestFiles.read(path)
        XCTAssertTrue(bytes.starts(with: Array("OggS".utf8)))
        // Mixed down: the user's tone at half level (−6 dB), the agent silent.
        let decoded = try AudioFileReader.read(path: path)
        XCTAssertLessThanOrEqual(abs(decoded.count - 16_000), 160)
        let half = tone.map { $0 / 2 }
        XCTAssertGreaterThan(TestFiles.bestCorrelation(decoded, half, lags: -400...400).value, 0.9)
        XCTAssertEqual(TestFiles.decibels(decoded[2000..<14_000]), -18, accuracy: 1.5)
    }
}
