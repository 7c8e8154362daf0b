import MillisCore

#if canImport(Glibc)
import Glibc
#endif

// Made once and never freed: safe to hand to C for ever (kept as an address: Sendable).
private let versionAddress = UInt(bitPattern: strdup(MillisVersion.string))

@_cdecl("millis_version_number")
public func millis_version_number() -> Int32 {
    Int32(MillisVersion.number)
}

@_cdecl("millis_version")
public func millis_version() -> UnsafePointer<CChar> {
    UnsafePointer(bitPattern: versionAddress) ?? staticCString("")
}

func staticCString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}
