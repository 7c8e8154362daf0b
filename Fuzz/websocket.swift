// libFuzzer entry point of the `websocket` target: WebSocketConnection (after a valid or
// fuzzed handshake, fed in input-chosen chunks) and FrameDecoder (whole vs chunked).
// The body is FuzzHarness.webSocket in Tests/MillisCoreTests/Fuzz/FuzzHarness.swift.
@_cdecl("LLVMFuzzerTestOneInput")
public func millisFuzzWebSocket(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    FuzzHarness.webSocket(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
