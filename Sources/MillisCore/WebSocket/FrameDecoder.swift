/// Incremental decoder of server frames (RFC 6455 §5.2). Bytes go in as they arrive;
/// whole frames come out. Enforces what a client must check of a server: no mask, no
/// reserved bits or opcodes, control frames short and unfragmented, a size limit
/// checked from the header before the payload is buffered.
public struct FrameDecoder {
    public let maxPayloadBytes: Int
    /// Only what a read left unfinished (a partial frame): whole frames are decoded
    /// straight from the bytes read (`lend`), so an idle connection holds no buffer.
    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// Bytes lent by the caller between `lend` and `takeBack`, read in place.
    private var lent: UnsafeRawBufferPointer?
    private var lentIndex = 0

    public init(maxPayloadBytes: Int) {
        self.maxPayloadBytes = maxPayloadBytes
    }

    /// Bytes received but not yet consumed by a whole frame.
    public var bufferedByteCount: Int { buffer.count - readIndex + (lent.map { $0.count - lentIndex } ?? 0) }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if readIndex > 0 && readIndex == buffer.count {
            buffer.removeAll()
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Decodes from `bytes` in place until `takeBack`, which the caller must call before
    /// `bytes` goes away. With a partial frame buffered, the bytes join it instead.
    public mutating func lend(_ bytes: UnsafeRawBufferPointer) {
        if readIndex == buffer.count && lent == nil {
            lent = bytes
            lentIndex = 0
        } else {
            append(bytes)
        }
    }

    /// Keeps what `next` did not consume of the lent bytes.
    public mutating func takeBack() {
        guard let bytes = lent else { return }
        lent = nil
        if lentIndex < bytes.count { append(UnsafeRawBufferPointer(rebasing: bytes[lentIndex...])) }
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// The next whole frame, or nil when more bytes are needed.
    public mutating func next() throws(WebSocketError) -> Frame? {
        if let bytes = lent {
            guard let (frame, used) = try Self.parse(UnsafeRawBufferPointer(rebasing: bytes[lentIndex...]),
                                                     maxPayloadBytes: maxPayloadBytes) else { return nil }
            lentIndex += used
            return frame
        }
        var failure: WebSocketError?
        let parsed = buffer.withUnsafeBytes { all -> (Frame, Int)? in
            do throws(WebSocketError) {
                return try Self.parse(UnsafeRawBufferPointer(rebasing: all[readIndex...]), maxPayloadBytes: maxPayloadBytes)
            } catch {
                failure = error
                return nil
            }
        }
        if let failure { throw failure }
        guard let (frame, used) = parsed else { return nil }
        readIndex += used
        if readIndex == buffer.count {
            // Emptied: a burst (a stalled server catching up) must not leave each of
            // thousands of connections holding its size.
            buffer.removeAll()
            readIndex = 0
        } else if readIndex > 65536 && readIndex * 2 > buffer.count {
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
        return frame
    }

    /// One frame from the start of `bytes` and the bytes it took, or nil when `bytes`
    /// hold less than a whole frame.
    private static func parse(_ bytes: UnsafeRawBufferPointer, maxPayloadBytes: Int) throws(WebSocketError) -> (Frame, Int)? {
        let available = bytes.count
        guard available >= 2 else { return nil }
        let b0 = bytes[0], b1 = bytes[1]
        if b0 & 0x70 != 0 {
            throw WebSocketError(.protocolError, "server frame has reserved bits set (no extension was negotiated)")
        }
        guard let opcode = Opcode(rawValue: b0 & 0x0F) else {
            throw WebSocketError(.protocolError, "server frame uses reserved opcode \(b0 & 0x0F)")
        }
        let fin = b0 & 0x80 != 0
        if b1 & 0x80 != 0 {
            throw WebSocketError(.protocolError, "server frame is masked (RFC 6455 §5.1 forbids it)")
        }
        var headerLength = 2
        var length = UInt64(b1 & 0x7F)
        if length == 126 {
            guard available >= 4 else { return nil }
            length = UInt64(bytes[2]) << 8 | UInt64(bytes[3])
            headerLength = 4
        } else if length == 127 {
            guard available >= 10 else { return nil }
            length = 0
            for i in 0..<8 { length = length << 8 | UInt64(bytes[2 + i]) }
            if length >> 63 != 0 {
                throw WebSocketError(.protocolError, "server frame length has its most significant bit set")
            }
            headerLength = 10
        }
        if opcode.isControl {
            if !fin { throw WebSocketError(.protocolError, "server sent a fragmented control frame") }
            if length > 125 { throw WebSocketError(.protocolError, "server control frame payload of \(length) bytes exceeds 125") }
        }
        if length > UInt64(maxPayloadBytes) {
            throw WebSocketError(.messageTooBig, "server frame of \(length) bytes exceeds the maximum message size of \(maxPayloadBytes) bytes")
        }
        let total = headerLength + Int(length)
        guard available >= total else { return nil }
        let payload = Array(UnsafeRawBufferPointer(rebasing: bytes[headerLength..<total]))
        return (Frame(fin: fin, opcode: opcode, payload: payload), total)
    }
}
