#if canImport(Glibc)
import Glibc
#endif

/// A value behind a pthread mutex, for state shared between API threads and the
/// network loop. Not Synchronization's `Mutex`: it locks with atomics and a futex inside
/// the uninstrumented Synchronization library, which ThreadSanitizer cannot see, so
/// every access through it was reported as a race and the TSan build (`make
/// sanitize-tsan`) could not tell a real race from it. pthread mutexes are intercepted
/// by every sanitizer and cost the same when uncontended.
public final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
