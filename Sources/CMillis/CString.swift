#if canImport(Glibc)
import Glibc
#endif
import MillisCore

@_cdecl("millis_free")
public func millis_free(_ pointer: UnsafeMutableRawPointer?) {
    free(pointer)
}

/// A malloc'ed copy of `s` for the caller to release with millis_free.
func mallocCString(_ s: String) -> UnsafeMutablePointer<CChar>? {
    s.withCString { strdup($0) }
}

/// Reads a required C string argument as UTF-8.
func readString(_ pointer: UnsafePointer<CChar>?, _ name: String) throws(MillisError) -> String {
    guard let pointer else { throw MillisError(.invalidArgument, "\(name) is NULL") }
    guard let s = String(validatingCString: pointer) else {
        throw MillisError(.invalidArgument, "\(name) is not valid UTF-8")
    }
    return s
}

/// Reads an optional C string argument (NULL: nil) as UTF-8. A path is checked too:
/// repairing invalid bytes would open a file other than the one named.
func readOptionalString(_ pointer: UnsafePointer<CChar>?, _ name: String) throws(MillisError) -> String? {
    pointer == nil ? nil : try readString(pointer, name)
}

/// The "last error" message of a handle: replaced by each failing call, readable by C
/// until then.
final class LastError: @unchecked Sendable {
    // The address of the current malloc'ed message (0: none).
    private let storage = Locked<UInt>(0)

    deinit {
        storage.withLock { free(UnsafeMutableRawPointer(bitPattern: $0)) }
    }

    func set(_ message: String) {
        let copy = UInt(bitPattern: mallocCString(message))
        let old = storage.withLock { current -> UInt in
            defer { current = copy }
            return current
        }
        free(UnsafeMutableRawPointer(bitPattern: old))
    }

    /// Runs a call of the C API and returns its status, recording a failure's message.
    func capture(_ body: () throws(MillisError) -> Void) -> Int32 {
        do {
            try body()
            return MillisStatus.ok.rawValue
        } catch {
            set(error.message)
            return error.status.rawValue
        }
    }

    var pointer: UnsafePointer<CChar> {
        let address = storage.withLock { $0 }
        return UnsafePointer(bitPattern: address) ?? staticCString("")
    }
}
