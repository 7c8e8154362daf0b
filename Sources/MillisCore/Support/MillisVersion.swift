import CMillisHeader

/// The library's version, from the MILLIS_VERSION_* macros of millis.h: the one place it
/// is written (the engine imports the header for these three numbers only).
public enum MillisVersion {
    public static let major = Int(MILLIS_VERSION_MAJOR)
    public static let minor = Int(MILLIS_VERSION_MINOR)
    public static let patch = Int(MILLIS_VERSION_PATCH)
    public static var number: Int { major * 1_000_000 + minor * 1000 + patch }
    public static var string: String { "\(major).\(minor).\(patch)" }
}
