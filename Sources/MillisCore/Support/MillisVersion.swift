/// The library's version; must agree with the MILLIS_VERSION_* macros of millis.h
/// (a test checks it).
public enum MillisVersion {
    public static let major = 0
    public static let minor = 1
    public static let patch = 0
    public static var number: Int { major * 1_000_000 + minor * 1000 + patch }
    public static var string: String { "\(major).\(minor).\(patch)" }
}
