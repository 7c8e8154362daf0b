import XCTest
@testable import MillisCore

final class AudioFileFormatTests: XCTestCase {
    func testKnownExtensionsInAnyCase() throws {
        let cases: [(String, AudioFileFormat)] = [
            ("a.wav", .wav), ("/tmp/dir.opus/B.WAV", .wav), ("c.Wav", .wav),
            ("d.opus", .opus), ("E.OPUS", .opus), ("f.ogg", .opus), ("/x/G.OGG", .opus),
        ]
        for (path, format) in cases {
            XCTAssertEqual(try AudioFileFormat(path: path, what: "test file"), format, path)
        }
    }

    func testEmptyPathIsAnInvalidArgumentNamingTheExtensions() {
        let error = TestFiles.millisError { () throws(MillisError) in try AudioFileFormat(path: "", what: "recording") }
        XCTAssertEqual(error?.status, .invalidArgument)
        let message = error?.message ?? ""
        for word in ["recording", ".wav", ".opus", ".ogg"] {
            XCTAssertTrue(message.contains(word), "'\(word)' missing from: \(message)")
        }
    }

    func testUnknownExtensionsAreInvalidArgumentsNamingPathAndExtensions() {
        for path in ["x.mp3", "noext", "wav", "a.wav.bak", "dir.wav/file", "x.oga", "/tmp/y.flac"] {
            let error = TestFiles.millisError { () throws(MillisError) in
                try AudioFileFormat(path: path, what: "audio input file")
            }
            XCTAssertEqual(error?.status, .invalidArgument, path)
            let message = error?.message ?? ""
            for word in ["audio input file", "'\(path)'", ".wav", ".opus", ".ogg"] {
                XCTAssertTrue(message.contains(word), "'\(word)' missing from: \(message)")
            }
        }
    }
}
