/// Fixed-point text for times: JSON numbers with no float rounding surprises and no
/// Foundation.
enum Seconds {
    /// Nanoseconds as seconds with 6 decimals ("12.345678").
    static func format(_ nanoseconds: Int64) -> String {
        fixed(nanoseconds / 1000, decimals: 6)
    }

    /// Nanoseconds as milliseconds with 3 decimals ("612.345").
    static func formatMilliseconds(_ nanoseconds: Int64) -> String {
        fixed(nanoseconds / 1000, decimals: 3)
    }

    /// Milliseconds given as a Double (an event's latency) with 3 decimals, or nil when
    /// the value is not finite or too large for Int64 nanoseconds: `Int64(x)` traps on
    /// those, and a timeline writes null for them instead.
    static func formatMilliseconds(_ milliseconds: Double) -> String? {
        guard let nanoseconds = Int64(exactly: (milliseconds * 1_000_000).rounded(.towardZero)) else { return nil }
        return formatMilliseconds(nanoseconds)
    }

    private static func fixed(_ value: Int64, decimals: Int) -> String {
        var scale: Int64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let sign = value < 0 ? "-" : ""
        let magnitude = value.magnitude
        let fraction = String(magnitude % UInt64(scale))
        return sign + String(magnitude / UInt64(scale)) + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }
}
