import XCTest
import CAudio
@testable import MillisCore

/// ALSA loaded on first use, and its error lines kept per thread instead of printed.
/// The process-level checks (no libasound in DT_NEEDED, a root without ALSA, nothing
/// on stderr) are Tests/python/test_no_alsa.py's.
final class AlsaTests: XCTestCase {
    private func requireAlsa() throws {
        guard Alsa.isAvailable else {
            throw XCTSkip("ALSA cannot be loaded here: \(String(cString: caudio_alsa_load_error()))")
        }
    }

    func testCauseIsTheFirstLineWithoutItsLocation() {
        let notes = ["confmisc.c:855:(parse_card) cannot find card '0'",
                     "conf.c:5180:(_snd_config_evaluate) function snd_func_card_inum returned error: No such device"]
        XCTAssertEqual(Alsa.cause(notes), "cannot find card '0'")
        XCTAssertEqual(Alsa.causeSuffix(notes), " (ALSA: cannot find card '0')")
        XCTAssertEqual(Alsa.cause(["no location"]), "no location")
        XCTAssertNil(Alsa.cause([]))
        XCTAssertEqual(Alsa.causeSuffix([]), "")
    }

    /// The open's own lines become the cause in the message, once.
    func testAFailedOpenNamesALSAsCause() throws {
        try requireAlsa()
        XCTAssertThrowsError(try AlsaPCM(name: "hw:97,0", direction: .capture, periodMilliseconds: 20, periods: 4)) { error in
            let message = (error as? MillisError)?.message ?? "\(error)"
            XCTAssertEqual((error as? MillisError)?.status, .audioDevice)
            XCTAssertTrue(message.hasPrefix("could not open ALSA capture device 'hw:97,0': "), message)
            XCTAssertTrue(message.contains("(ALSA: Cannot get card index for 97)"), message)
        }
        XCTAssertEqual(String(cString: caudio_alsa_notes()), "", "the open's notes were taken")
    }

    /// Each thread keeps its own lines, and no more than the buffer holds (the first).
    func testNotesArePerThreadAndBounded() throws {
        try requireAlsa()
        caudio_alsa_notes_clear()
        for _ in 0..<200 { _ = caudio_probe_pcm("no-such-pcm", SND_PCM_STREAM_CAPTURE) }
        let mine = String(cString: caudio_alsa_notes())
        XCTAssertTrue(mine.hasPrefix("pcm.c:"), mine)
        XCTAssertTrue(mine.contains("Unknown PCM no-such-pcm"), mine)
        XCTAssertLessThan(mine.utf8.count, 1024)

        final class Box: @unchecked Sendable { var notes = "" }
        let box = Box()
        let finished = DispatchSemaphore(value: 0)
        Thread {
            caudio_alsa_notes_clear()
            _ = caudio_probe_pcm("hw:98,0", SND_PCM_STREAM_PLAYBACK)
            box.notes = String(cString: caudio_alsa_notes())
            finished.signal()
        }.start()
        XCTAssertEqual(finished.wait(timeout: .now() + 30), .success)
        XCTAssertTrue(box.notes.contains("card index for 98"), box.notes)
        XCTAssertEqual(String(cString: caudio_alsa_notes()), mine, "another thread's lines stayed there")
        caudio_alsa_notes_clear()
    }

    func testDescribeGivesALSAsOrErrnosText() {
        XCTAssertEqual(Alsa.describe(-Int32(EPIPE)), "Broken pipe")
        XCTAssertEqual(AlsaPCM.describeOpenFailure(-ENOENT), "no such device")
    }
}
