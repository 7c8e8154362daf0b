/// A parsed JSON value. Objects keep their members in document order, and numbers keep
/// their literal text, so that a value passed through the library is written back as the
/// caller wrote it (the web SDK's start options travel into `initiate` untouched).
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number's literal text, exactly as it appeared (e.g. `1.50`, `-2e3`).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The member named `key` of an object (the first, if repeated); nil otherwise.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first(where: { $0.key == key })?.value
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The value of a number, or of a string holding one, when it is a finite Double;
    /// nil otherwise. Values come from the network: "nan", "inf", "-infinity" (which
    /// Double(String) takes) and literals beyond Double's range such as 1e999 (which it
    /// makes infinite) are nil, so no NaN or infinity reaches arithmetic or a
    /// conversion to an integer, which would trap. Finite values can still be huge
    /// (1e308): check the range before converting (`Int(exactly:)`).
    public var doubleValue: Double? {
        let value: Double?
        switch self {
        case .number(let text): value = Double(text)
        case .string(let text): value = Double(text)
        default: return nil
        }
        guard let value, value.isFinite else { return nil }
        return value
    }

    public var isObject: Bool {
        if case .object = self { return true }
        return false
    }

    /// The value as compact JSON text.
    public var jsonText: String {
        var out = ""
        JSONWriter.write(self, to: &out)
        return out
    }
}
