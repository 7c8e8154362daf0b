import XCTest
@testable import MillisCore

final class OggOpusFileWriterTests: ScratchDirectoryTestCase {

    private func contains(_ bytes: [UInt8], _ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard bytes.count >= needle.count else { return false }
        return (0...(bytes.count - needle.count)).contains { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    func testHeadersNameTheEncoderTheTitleAndTheInputRate() throws {
        let path = dir.path("tags.opus")
        let writer = try OggOpusFileWriter(path: path, channels: 2, sampleRate: 16_000, title: "call 7")
        try [Int16](repeating: 0, count: 2 * 3200).withUnsafeBufferPointer { b throws(MillisError) in try writer.write(b) }
        try writer.finish()
        let bytes = try TestFiles.read(path)
        XCTAssertTrue(bytes.starts(with: Array("OggS".utf8)))
        XCTAssertTrue(contains(bytes, "TITLE=call 7"))
        XCTAssertTrue(contains(bytes, "ENCODER=libmillis \(MillisVersion.string)"))
        // OpusHead: version 1, the channel count, then (after pre-skip) the input rate.
        let head = Array("OpusHead".utf8)
        let at = try XCTUnwrap((0...(bytes.count - 19)).first { bytes[$0..<($0 + 8)].elementsEqual(head) })
        XCTAssertEqual(bytes[at + 8], 1)
        XCTAssertEqual(bytes[at + 9], 2)
        XCTAssertEqual(TestFiles.u32(bytes, at + 12), 16_000)
    }

    func testNoTitleMeansNoTitleTag() throws {
        let path = dir.path("untitled.opus")
        let writer = try OggOpusFileWriter(path: path, channels: 1, sampleRate: 16_000, title: "")
        try [Int16](repeating: 0, count: 320).withUnsafeBufferPointer { b throws(MillisError) in try writer.write(b) }
        try writer.finish()
        XCTAssertFalse(contains(try TestFiles.read(path), "TITLE="))
    }

    /// A file closed before any audio (a recording stopped at once, an output that
    /// never played): libopusenc 0.2.1 asserts in ope_encoder_drain when no audio was
    /// written (xiph/libopusenc#24), which aborts the host process, so the writer puts
    /// one 20 ms frame of silence in. Run in a child, so a regression fails one test.
    func testFinishingWithoutAudioGivesAValidFile() throws {
        let name = "OggOpusFileWriterTests/testFinishingWithoutAudioGivesAValidFile"
        guard TestFiles.isChild(name) else { return try TestFiles.assertChildPasses(name) }
        let path = dir.path("empty.opus")
        let writer = try OggOpusFileWriter(path: path, channels: 1, sampleRate: 16_000, title: "")
        try writer.finish()
        let decoded = try AudioFileReader.read(path: path)
        XCTAssertLessThanOrEqual(decoded.count, 320)
        XCTAssertEqual(decoded.map { abs(Int($0)) }.max() ?? 0, 0, "the frame is silence")
    }

    func testStereoChannelsDecodeToTheirMean() throws {
        let path = dir.path("stereo.ogg")
        let writer = try OggOpusFileWriter(path: path, channels: 2, sampleRate: 16_000, title: "")
        let tone = TestFiles.int16(TestFiles.tone(frequency: 1000, dBFS: -12, count: 16_000))
        // The tone on the left only.
        let interleaved: [Int16] = tone.flatMap { s -> [Int16] in [s, 0] }
        try interleaved.withUnsafeBufferPointer { b throws(MillisError) in try writer.write(b) }
        try writer.finish()
        let decoded = try AudioFileReader.read(path: path)
        XCTAssertLessThanOrEqual(abs(decoded.count - 16_000), 160)
        XCTAssertGreaterThan(TestFiles.bestCorrelation(decoded, tone, lags: -400...400).value, 0.9)
        XCTAssertEqual(TestFiles.decibels(decoded[2000..<14_000]), -18, accuracy: 1.5)
    }

    func testFinishTwiceAndWriteAfterFinishAreHarmless() throws {
        let path = dir.path("twice.opus")
        let writer = try OggOpusFileWriter(path: path, channels: 1, sampleRate: 16_000, title: "")
        try [Int16](repeating: 100, count: 1600).withUnsafeBufferPointer { b throws(MillisError) in try writer.write(b) }
        try writer.finish()
        let first = try TestFiles.read(path)
        try writer.finish()
        try [Int16](repeating: 100, count: 1600).withUnsafeBufferPointer { b throws(MillisError) in try writer.write(b) }
        XCTAssertEqual(try TestFiles.read(path), first)
        XCTAssertEqual(try AudioFileReader.read(path: path).count, 1600, accuracy: 16)
    }

    func testMissingDirectoryIsAFileErrorNamingThePath() {
        let path = dir.path("none/x.opus")
        let error = TestFiles.millisError { () throws(MillisError) in
            try OggOpusFileWriter(path: path, channels: 1, sampleRate: 16_000, title: "")
        }
        XCTAssertEqual(error?.status, .file)
        XCTAssertTrue(error?.message.contains(path) ?? false, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("missing folder") ?? false, error?.message ?? "")
    }
}
