import MillisCore

// Static strings live in the binary's read-only data: safe to hand to C for ever.
private let versionString: StaticString = "0.1.0"

@_cdecl("millis_version_number")
public func millis_version_number() -> Int32 {
    Int32(MillisVersion.number)
}

@_cdecl("millis_version")
public func millis_version() -> UnsafePointer<CChar> {
    staticCString(versionString)
}

func staticCString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}
