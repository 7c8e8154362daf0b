import Foundation
import XCTest

/// Replays the fuzz inputs kept in the repository through the fuzz targets' own bodies
/// (FuzzHarness): Fuzz/regressions/<target>/* (inputs that once crashed a target; each
/// must now pass) and the seed corpus Fuzz/corpus/<target>/*. A failure here is a trap
/// in the test process, like the fuzzer's crash; rerun the input with
/// `build/fuzz/<target> <file>` (make fuzz-build) for the sanitizer's report.
final class FuzzRegressionTests: XCTestCase {
    private static let fuzzRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Fuzz
        .deletingLastPathComponent()  // MillisCoreTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root
        .appendingPathComponent("Fuzz")

    private func inputs(_ folder: String, _ target: String) throws -> [URL] {
        let dir = Self.fuzzRoot.appendingPathComponent(folder).appendingPathComponent(target)
        guard FileManager.default.fileExists(atPath: dir.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") && !$0.lastPathComponent.hasSuffix(".md") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    private func replay(_ folder: String) throws -> Int {
        var count = 0
        for target in FuzzHarness.targetNames {
            for file in try inputs(folder, target) {
                let data = try Data(contentsOf: file)
                FuzzHarness.run(target: target, Array(data))
                count += 1
            }
        }
        return count
    }

    func testRegressionInputsNoLongerCrash() throws {
        _ = try replay("regressions")
    }

    func testSeedCorpusRuns() throws {
        XCTAssertGreaterThan(try replay("corpus"), 20, "the seed corpus under \(Self.fuzzRoot.path)/corpus is missing")
    }
}
