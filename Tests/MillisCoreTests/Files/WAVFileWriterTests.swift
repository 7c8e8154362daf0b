import XCTest
@testable import MillisCore

final class WAVFileWriterTests: ScratchDirectoryTestCase {

    /// 1001 stereo frames: both extremes, zero, and a pattern that differs per channel.
    private static let stereo: [Int16] = [Int16.min, Int16.max, 0, -1]
        + (4..<2002).map { Int16(truncatingIfNeeded: $0 * 7919 - 13) }

    func testStereoHeaderAndSamples() throws {
        let path = dir.path("s.wav")
        let writer = try WAVFileWriter(path: path, channels: 2, sampleRate: 16_000)
        XCTAssertEqual(writer.path, path)
        XCTAssertEqual(writer.channels, 2)
        // Two writes, the first an odd number of frames.
        try Self.stereo.withUnsafeBufferPointer { all throws(MillisError) in
            try writer.write(UnsafeBufferPointer(rebasing: all[0..<(2 * 333)]))
            try writer.write(UnsafeBufferPointer(rebasing: all[(2 * 333)...]))
        }
        try writer.finish()

        let bytes = try TestFiles.read(path)
        XCTAssertEqual(bytes.count, 44 + 2 * Self.stereo.count)
        let wav = try TestFiles.parseWAV(bytes)
        XCTAssertEqual(wav.riffSize, bytes.count - 8)
        XCTAssertEqual(wav.fmtSize, 16)
        XCTAssertEqual(wav.formatTag, 1, "PCM")
        XCTAssertEqual(wav.channels, 2)
        XCTAssertEqual(wav.rate, 16_000)
        XCTAssertEqual(wav.byteRate, 64_000)
        XCTAssertEqual(wav.blockAlign, 4)
        XCTAssertEqual(wav.bits, 16)
        XCTAssertEqual(wav.dataSize, 2 * Self.stereo.count)
        XCTAssertEqual(wav.samples, Self.stereo)
        XCTAssertEqual(wav.channel(0).count, 1001)
        XCTAssertEqual(wav.channel(0).prefix(2), [Int16.min, 0])
        XCTAssertEqual(wav.channel(1).prefix(2), [Int16.max, -1])
    }

    func testMonoHeaderAtAnotherRate() throws {
        let path = dir.path("m.wav")
        let writer = try WAVFileWriter(path: path, channels: 1, sampleRate: 48_000)
        let samples: [Int16] = [1, -2, 3]
        try samples.withUnsafeBufferPointer { b throws(MillisError) in try writer.write(b) }
        try writer.finish()
        let wav = try TestFiles.readWAV(path)
        XCTAssertEqual([wav.channels, wav.rate, wav.byteRate, wav.blockAlign, wav.bits], [1, 48_000, 96_000, 2, 16])
        XCTAssertEqual(wav.riffSize, 36 + 6)
        XCTAssertEqual(wav.samples, samples)
    }

    func testEmptyFileIsAValidWAV() throws {
        let path = dir.path("e.wav")
        let writer = try WAVFileWriter(path: path, channels: 2, sampleRate: 16_000)
        try [Int16]().withUnsafeBufferPointer { b throws(MillisError) in try writer.write(b) }
        try writer.finish()
        let bytes = try TestFiles.read(path)
        XCTAssertEqual(bytes.count, 44)
        let wav = try TestFiles.parseWAV(bytes)
        XCTAssertEqual(wav.riffSize, 36)
        XCTAssertEqual(wav.dataSize, 0)
    }

    func testFinishTwiceAndWriteAfterFinishAreHarmless() throws {
        let path = dir.path("twice.wav")
        let writer = try WAVFileWriter(path: path, channels: 1, sampleRate: 16_000)
        let samples: [Int16] = [10, 20, 30, 40]
        try samples.withUnsafeBufferPointer { b throws(MillisError) in try writer.write(b) }
        try writer.finish()
        let first = try TestFiles.read(path)
        try writer.finish()
        try samples.withUnsafeBufferPointer { b throws(MillisError) in try writer.write(b) }
        try writer.finish()
        XCTAssertEqual(try TestFiles.read(path), first)
        XCTAssertEqual(try TestFiles.parseWAV(first).samples, samples)
    }

    func testDroppingTheWriterCompletesTheFile() throws {
        let path = dir.path("dropped.wav")
        do {
            let writer = try WAVFileWriter(path: path, channels: 1, sampleRate: 16_000)
            try [Int16](repeating: 5, count: 100).withUnsafeBufferPointer { b throws(MillisError) in try writer.write(b) }
        }
        let wav = try TestFiles.readWAV(path)
        XCTAssertEqual(wav.dataSize, 200)
        XCTAssertEqual(wav.riffSize, 236)
        XCTAssertEqual(wav.samples, [Int16](repeating: 5, count: 100))
    }

    func testMissingDirectoryIsAFileErrorNamingThePath() {
        let path = dir.path("no/such/dir/x.wav")
        let error = TestFiles.millisError { () throws(MillisError) in
            try WAVFileWriter(path: path, channels: 1, sampleRate: 16_000)
        }
        XCTAssertEqual(error?.status, .file)
        XCTAssertTrue(error?.message.contains(path) ?? false, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("No such file or directory") ?? false, error?.message ?? "")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }
}
