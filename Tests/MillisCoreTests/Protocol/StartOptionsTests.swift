import XCTest
@testable import MillisCore

final class StartOptionsTests: XCTestCase {
    func testInitiateCarriesTheOptionsUntouchedPlusTheKey() throws {
        let options = #"{"agent":{"agent_id":"a1","agent_config":{"prompt":"hi","tools":[{"name":"t","params":[]}],"x_future":1.0}},"metadata":{"user":"u"},"include_metadata_in_prompt":true,"session_continuation":{"session_id":"s0"}}"#
        let initiate = try StartOptions(json: options).initiateMessage(publicKey: "pk\"1")
        let parsed = try JSONParser.parse(initiate)
        XCTAssertEqual(parsed["method"], .string("initiate"))
        let data = try XCTUnwrap(parsed["data"])
        let original = try JSONParser.parse(options)
        for key in ["agent", "metadata", "include_metadata_in_prompt", "session_continuation"] {
            XCTAssertEqual(data[key], original[key], key)
        }
        XCTAssertEqual(data["public_key"], .string("pk\"1"))
        XCTAssertTrue(initiate.contains("\"x_future\":1.0"), "numbers keep their text")
    }

    func testRedactedInitiateHidesTheKey() throws {
        let options = try StartOptions(agentId: "a")
        XCTAssertFalse(options.redactedInitiateMessage.contains("secret"))
        XCTAssertTrue(options.initiateMessage(publicKey: "secret").contains("secret"))
    }

    func testRefusesBadOptionsWithHelpfulMessages() {
        let cases: [(String, String)] = [
            ("{", "options JSON"),
            ("[]", "must be a JSON object"),
            ("{}", "\"agent\""),
            (#"{"agent": 3}"#, "must be an object"),
            (#"{"agent": {}}"#, "agent_id"),
            (#"{"agent": {"agent_id": ""}}"#, "non-empty string"),
            (#"{"agent": {"agent_config": []}}"#, "agent_config"),
            (#"{"agent": {"agent_id": "a"}, "metadata": 1}"#, "metadata"),
            (#"{"agent": {"agent_id": "a"}, "include_metadata_in_prompt": "yes"}"#, "true or false"),
            (#"{"agent": {"agent_id": "a"}, "session_continuation": {}}"#, "session_id"),
            (#"{"agent": {"agent_id": "a"}, "public_key": "k"}"#, "public_key"),
        ]
        for (json, expected) in cases {
            XCTAssertThrowsError(try StartOptions(json: json), json) { error in
                let error = error as! MillisError
                XCTAssertEqual(error.status, .invalidJSON, json)
                XCTAssertTrue(error.message.contains(expected), "\(json): \(error.message)")
            }
        }
        XCTAssertThrowsError(try StartOptions(agentId: ""))
    }

    func testContinuingSetsOrReplacesTheSessionContinuation() throws {
        let plain = try StartOptions(json: #"{"agent":{"agent_id":"a"},"metadata":{"m":1}}"#).continuing(sessionId: .string("S9"))
        let data = try XCTUnwrap(try JSONParser.parse(plain.initiateMessage(publicKey: "k"))["data"])
        XCTAssertEqual(data["session_continuation"], .object([("session_id", .string("S9"))]))
        XCTAssertEqual(data["metadata"], .object([("m", .number("1"))]))
        let replaced = try StartOptions(json: #"{"agent":{"agent_id":"a"},"session_continuation":{"session_id":"old"}}"#).continuing(sessionId: .string("new"))
        let text = replaced.initiateMessage(publicKey: "k")
        XCTAssertTrue(text.contains(#""session_continuation":{"session_id":"new"}"#))
        XCTAssertFalse(text.contains("old"))
    }
}
