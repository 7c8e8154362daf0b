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

/// The "last error" message of a handle, per calling thread (as errno): a failing call
/// replaces the message of the thread that made it, so a message another thread is
/// reading is never freed under it. Readable by C until that thread's next failing call
/// on the handle.
final class LastError: @unchecked Sendable {
    // pthread_self() -> the address of that thread's malloc'ed message. One entry per
    // thread that ever failed a call on the handle, freed with the handle.
    private let storage = Locked<[UInt: UInt]>([:])

    deinit {
        storage.withLock { messages in
            for address in messages.values { free(UnsafeMutableRawPointer(bitPattern: address)) }
        }
    }

    func set(_ message: String) {
        let copy = UInt(bitPattern: mallocCString(message))
        let me = UInt(pthread_self())
        let old = storage.withLock { messages -> UInt in
            defer { messages[me] = copy }
            return messages[me] ?? 0
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

    /// The calling thread's message ("" when none of its calls on the handle failed).
    var pointer: UnsafePointer<CChar> {
        let me = UInt(pthread_self())
        let address = storage.withLock { $0[me] ?? 0 }
        return UnsafePointer(bitPattern: address) ?? staticCString("")
    }
}
