import Foundation
import XCTest
@testable import MillisCore

/// A test case with a fresh scratch directory (`dir`) per test, removed afterwards.
class ScratchDirectoryTestCase: XCTestCase {
    var dir: TestFiles.Directory!

    override func setUpWithError() throws {
        dir = try TestFiles.Directory()
    }

    override func tearDown() {
        dir?.remove()
    }
}

/// What the file and recording tests share: a scratch directory, RIFF WAVE bytes built
/// by hand (every header the reader claims to take), a strict parser for what the
/// writers produce, and signals with known content.
enum TestFiles {
    /// A fresh directory under the system's temporary directory; `remove` deletes it.
    final class Directory {
        let url: URL

        init() throws {
            url = FileManager.default.temporaryDirectory
                .appendingPathComponent("millis-tests-\(UUID().uuidString)", isDirectory: true)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        }

        func path(_ name: String) -> String { url.appendingPathComponent(name).path }

        func remove() { try? FileManager.default.removeItem(at: url) }
    }

    // MARK: Bytes

    static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func u16(_ v: Int) -> [UInt8] { (0..<2).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func u32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func u16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }
    static func u32(_ b: [UInt8], _ at: Int) -> Int { u16(b, at) | u16(b, at + 2) << 16 }

    static func pcm16(_ samples: [Int16]) -> [UInt8] {
        samples.flatMap { u16(Int($0)) }
    }

    // MARK: WAV, by hand

    /// A RIFF chunk, padded to an even length as RIFF requires.
    static func chunk(_ id: String, _ body: [UInt8], declaredSize: Int? = nil) -> [UInt8] {
        Array(id.utf8) + u32(declaredSize ?? body.count) + body + (body.count % 2 == 1 ? [0] : [])
    }

    /// A `fmt ` chunk body: 16 bytes, or 40 for WAVE_FORMAT_EXTENSIBLE (the tag goes in
    /// the sub-format GUID, the header's tag is 0xFFFE).
    static func fmtBody(tag: Int, channels: Int, rate: Int, bits: Int, extensible: Bool = false) -> [UInt8] {
        let blockAlign = channels * bits / 8
        var body = u16(extensible ? 0xFFFE : tag) + u16(channels) + u32(rate) + u32(rate * blockAlign)
            + u16(blockAlign) + u16(bits)
        if extensible {
            // cbSize, valid bits, channel mask, then KSDATAFORMAT_SUBTYPE_{PCM,IEEE_FLOAT}.
            body += u16(22) + u16(bits) + u32(channels == 1 ? 0x4 : 0x3)
            body += u16(tag) + [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]
        }
        return body
    }

    /// A whole WAV file: `fmt `, any extra chunks, then `data`.
    static func wav(tag: Int = 1, channels: Int, rate: Int, bits: Int, data: [UInt8], extensible: Bool = false,
                    before: [UInt8] = [], dataDeclaredSize: Int? = nil) -> [UInt8] {
        let body = Array("WAVE".utf8) + chunk("fmt ", fmtBody(tag: tag, channels: channels, rate: rate, bits: bits, extensible: extensible))
            + before + chunk("data", data, declaredSize: dataDeclaredSize)
        return Array("RIFF".utf8) + u32(body.count) + body
    }

    // MARK: WAV, parsed

    struct WAV {
        var formatTag: Int
        var channels: Int
        var rate: Int
        var byteRate: Int
        var blockAlign: Int
        var bits: Int
        var riffSize: Int
        var fmtSize: Int
        var dataSize: Int
        var fileSize: Int
        /// Interleaved PCM16.
        var samples: [Int16]

        func channel(_ c: Int) -> [Int16] {
            stride(from: c, to: samples.count, by: channels).map { samples[$0] }
        }
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// The canonical 44-byte header WAVFileWriter writes, then PCM16. Anything else is
    /// `Malformed`, so a test that parses a writer's output checks its layout too.
    static func parseWAV(_ b: [UInt8]) throws -> WAV {
        func expect(_ ok: Bool, _ why: String) throws { if !ok { throw Malformed(description: why) } }
        try expect(b.count >= 44, "\(b.count) bytes: shorter than a WAV header")
        try expect(b[0..<4].elementsEqual("RIFF".utf8) && b[8..<12].elementsEqual("WAVE".utf8), "no RIFF/WAVE")
        try expect(b[12..<16].elementsEqual("fmt ".utf8), "fmt is not the first chunk")
        try expect(b[36..<40].elementsEqual("data".utf8), "data does not follow a 16-byte fmt")
        let dataSize = u32(b, 40)
        try expect(dataSize % 2 == 0 && 44 + dataSize <= b.count, "data size \(dataSize) for \(b.count) bytes")
        let samples = (0..<(dataSize / 2)).map { Int16(truncatingIfNeeded: u16(b, 44 + 2 * $0)) }
        return WAV(formatTag: u16(b, 20), channels: u16(b, 22), rate: u32(b, 24), byteRate: u32(b, 28),
                   blockAlign: u16(b, 32), bits: u16(b, 34), riffSize: u32(b, 4), fmtSize: u32(b, 16),
                   dataSize: dataSize, fileSize: b.count, samples: samples)
    }

    static func readWAV(_ path: String) throws -> WAV {
        try parseWAV(read(path))
    }

    /// A 16 kHz mono PCM16 file, through the writer under test elsewhere.
    static func writeWAV(_ samples: [Int16], channels: Int = 1, rate: Int = 16_000, to path: String) throws {
        try write(wav(channels: channels, rate: rate, bits: 16, data: pcm16(samples)), to: path)
    }

    // MARK: Signals

    /// A sine of `frequency` whose RMS is `dBFS` (full scale = 32768), phase 0 at sample 0.
    static func tone(frequency: Double = 1000, dBFS: Double, count: Int, rate: Double = 16_000) -> [Double] {
        let amplitude = pow(10, dBFS / 20) * 2.0.squareRoot()
        return (0..<count).map { amplitude * sin(2 * Double.pi * frequency * Double($0) / rate) }
    }

    static func int16(_ x: [Double]) -> [Int16] {
        x.map { Int16(clamping: Int(($0 * 32768).rounded())) }
    }

    /// Deterministic Gaussian noise of RMS `dBFS` (Box–Muller over a 64-bit LCG).
    static func noise(dBFS: Double, count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [Double] {
        var state = seed
        func uniform() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (Double(state >> 11) + 0.5) / Double(1 << 53)
        }
        let sigma = pow(10, dBFS / 20)
        return (0..<count).map { _ in sigma * (-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform()) }
    }

    /// RMS level in dBFS.
    static func decibels<C: Collection>(_ x: C) -> Double where C.Element == Int16 {
        let energy = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(1, x.count))
        return 10 * log10(energy / (32768.0 * 32768.0))
    }

    /// |DFT| of `x` at `frequency` (Goertzel), normalised by the length.
    static func magnitude<C: Collection>(_ x: C, frequency: Double, rate: Double = 16_000) -> Double where C.Element == Int16 {
        let w = 2 * Double.pi * frequency / rate
        var re = 0.0, im = 0.0, n = 0.0
        for s in x {
            re += Double(s) * cos(w * n)
            im -= Double(s) * sin(w * n)
            n += 1
        }
        return (re * re + im * im).squareRoot() / Double(max(1, x.count))
    }

    /// Normalised correlation of `a` (shifted by `lag`: a[i + lag] against b[i]) with `b`
    /// over their overlap.
    static func correlation(_ a: [Int16], _ b: [Int16], lag: Int) -> Double {
        var ab = 0.0, aa = 0.0, bb = 0.0
        for i in max(0, -lag)..<min(b.count, a.count - lag) {
            let x = Double(a[i + lag]), y = Double(b[i])
            ab += x * y
            aa += x * x
            bb += y * y
        }
        return aa > 0 && bb > 0 ? ab / (aa * bb).squareRoot() : 0
    }

    /// The best normalised correlation over lags in `lags`, and its lag.
    static func bestCorrelation(_ a: [Int16], _ b: [Int16], lags: ClosedRange<Int>) -> (value: Double, lag: Int) {
        var best = (value: -2.0, lag: 0)
        for lag in lags {
            let c = correlation(a, b, lag: lag)
            if c > best.value { best = (c, lag) }
        }
        return best
    }

    // MARK: Comparing

    /// Nil when equal; otherwise where and how `got` first differs from `expected` (a
    /// failure message that stays short for long signals).
    static func mismatch<A: Collection, B: Collection>(_ got: A, _ expected: B) -> String?
    where A.Element == Int16, B.Element == Int16 {
        let g = Array(got), e = Array(expected)
        if g == e { return nil }
        let i = (0..<min(g.count, e.count)).first { g[$0] != e[$0] } ?? min(g.count, e.count)
        func around(_ x: [Int16]) -> String { "\(x[min(i, x.count)..<min(i + 6, x.count)])" }
        return "\(g.count) samples for \(e.count); first difference at \(i): got \(around(g)), expected \(around(e))"
    }

    // MARK: Child processes

    private static let childVariable = "MILLIS_TESTS_CHILD"

    /// True in the child process `runInChild(test)` started for `test`.
    static func isChild(_ test: String) -> Bool {
        ProcessInfo.processInfo.environment[childVariable] == test
    }

    /// Runs one test of this bundle ("Class/method") in a child process, for code that
    /// may abort (a C library's `assert`): a crash then fails the test that asked,
    /// instead of ending the whole run. The test's body runs when `isChild(test)`.
    static func runInChild(_ test: String) throws -> (status: Int32, signalled: Bool, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        process.arguments = ["MillisCoreTests." + test]
        // The child's scratch directories go inside one of the parent's, which a crash
        // cannot leave behind.
        let scratch = try Directory()
        defer { scratch.remove() }
        var environment = ProcessInfo.processInfo.environment
        environment[childVariable] = test
        environment["SWIFT_BACKTRACE"] = "enable=no"
        environment["TMPDIR"] = scratch.url.path
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal, output)
    }

    /// Fails unless the child ran `test` to a normal, successful exit, `runs` times (a
    /// crash that depends on the process's state may need more than one).
    static func assertChildPasses(_ test: String, runs: Int = 1, file: StaticString = #filePath, line: UInt = #line) throws {
        for run in 1...runs {
            let child = try runInChild(test)
            let why = child.output.split(separator: "\n").filter {
                $0.contains("Assertion") || $0.contains("error:") || $0.contains("Fatal")
            }.joined(separator: " | ")
            if child.signalled {
                return XCTFail("\(test) was killed by signal \(child.status) in run \(run): \(why)", file: file, line: line)
            } else if child.status != 0 {
                return XCTFail("\(test) exited with status \(child.status) in run \(run): \(why)", file: file, line: line)
            } else if !child.output.contains("Executed 1 test") {
                return XCTFail("the child did not run \(test)", file: file, line: line)
            }
        }
    }

    // MARK: Errors

    /// The MillisError `body` throws, failing the test if it throws none.
    static func millisError<T>(_ body: () throws(MillisError) -> T, file: StaticString = #filePath,
                               line: UInt = #line) -> MillisError? {
        do {
            _ = try body()
            XCTFail("no error thrown", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }
}
