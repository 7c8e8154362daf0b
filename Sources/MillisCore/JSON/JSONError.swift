/// Why a text is not valid JSON, with the byte offset where parsing stopped.
public struct JSONError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public let offset: Int

    public var description: String { "\(message) at byte \(offset)" }
}
