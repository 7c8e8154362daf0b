/// A violation of RFC 6455 by the peer, with the close code the client answers with.
public struct WebSocketError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// Malformed framing: close 1002.
        case protocolError
        /// A text message or close reason that is not UTF-8: close 1007.
        case invalidUTF8
        /// A message above the configured maximum: close 1009.
        case messageTooBig
        /// The opening handshake was refused or malformed.
        case handshake
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The close code RFC 6455 §7.4.1 assigns to this failure.
    public var closeCode: UInt16 {
        switch kind {
        case .protocolError, .handshake: return 1002
        case .invalidUTF8: return 1007
        case .messageTooBig: return 1009
        }
    }

    public var description: String { message }
}
