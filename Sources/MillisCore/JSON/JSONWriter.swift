/// Writes `JSONValue`s as compact JSON text.
public enum JSONWriter {
    public static func write(_ value: JSONValue, to out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        // The text of a parsed number is valid by construction; one built in code may
        // not be (String(Double.nan) is "nan"): then null, never invalid JSON.
        case .number(let text): out += isNumberLiteral(text) ? text : "null"
        case .string(let s): writeString(s, to: &out)
        case .array(let elements):
            out += "["
            for (i, element) in elements.enumerated() {
                if i > 0 { out += "," }
                write(element, to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, member) in members.enumerated() {
                if i > 0 { out += "," }
                writeString(member.key, to: &out)
                out += ":"
                write(member.value, to: &out)
            }
            out += "}"
        }
    }

    /// Whether `text` is a JSON number (RFC 8259 §6): -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    public static func isNumberLiteral(_ text: String) -> Bool {
        var utf8 = text.utf8.makeIterator()
        var c = utf8.next()
        func isDigit(_ c: UInt8?) -> Bool { c.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
        func digits() -> Bool {
            guard isDigit(c) else { return false }
            while isDigit(c) { c = utf8.next() }
            return true
        }
        if c == UInt8(ascii: "-") { c = utf8.next() }
        if c == UInt8(ascii: "0") {
            c = utf8.next()
        } else if !digits() {
            return false
        }
        if c == UInt8(ascii: ".") {
            c = utf8.next()
            guard digits() else { return false }
        }
        if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
            c = utf8.next()
            if c == UInt8(ascii: "+") || c == UInt8(ascii: "-") { c = utf8.next() }
            guard digits() else { return false }
        }
        return c == nil
    }

    /// Appends `s` as a JSON string literal, escaping what RFC 8259 requires.
    public static func writeString(_ s: String, to out: inout String) {
        out += "\""
        // Only ASCII bytes need escaping (a UTF-8 multi-byte sequence has none below
        // 0x80), so the text between them goes out in runs, not scalar by scalar: the
        // timeline writes every message it records through here.
        let utf8 = s.utf8
        var run = utf8.startIndex
        var i = run
        while i != utf8.endIndex {
            let byte = utf8[i]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else {
                i = utf8.index(after: i)
                continue
            }
            out += s[run..<i]
            switch byte {
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\\"): out += "\\\\"
            case UInt8(ascii: "\n"): out += "\\n"
            case UInt8(ascii: "\r"): out += "\\r"
            case UInt8(ascii: "\t"): out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            default:
                let hex = String(byte, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
            i = utf8.index(after: i)
            run = i
        }
        out += s[run..<utf8.endIndex]
        out += "\""
    }

    /// `s` as a JSON string literal.
    public static func quoted(_ s: String) -> String {
        var out = ""
        writeString(s, to: &out)
        return out
    }
}
