// libFuzzer entry point of the `server_message` target: JSONParser, ServerMessage.parse
// and Session.receivedText/receivedBinary on a ready, an open and a resumed session, with
// what the network loop does with the actions and every getter and serialiser.
// The body is FuzzHarness.serverMessage in Tests/MillisCoreTests/Fuzz/FuzzHarness.swift.
@_cdecl("LLVMFuzzerTestOneInput")
public func millisFuzzServerMessage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    FuzzHarness.serverMessage(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
