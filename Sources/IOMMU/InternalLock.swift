#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A pthread mutex plus condition variable for the registry's bookkeeping (event log,
/// hooks, group table). Not a kernel lock, so not validated by Lockdep; pthread-based so
/// ThreadSanitizer sees it (`Synchronization.Mutex` is invisible to TSan on Linux).
final class InternalLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits on the condition; the caller holds the lock. Returns `false` on timeout.
    func wait(deadline: timespec?) -> Bool {
        guard var deadline else {
            pthread_cond_wait(cond, mutex)
            return true
        }
        return pthread_cond_timedwait(cond, mutex, &deadline) == 0
    }

    func broadcast() { pthread_cond_broadcast(cond) }

    /// A monotonic deadline `seconds` from now.
    static func deadline(after seconds: Double) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let total = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 + seconds
        let sec = total.rounded(.down)
        return timespec(tv_sec: Int(sec), tv_nsec: min(Int((total - sec) * 1e9), 999_999_999))
    }
}

/// The calling thread's pthread id, for ownership checks.
@inline(__always)
func currentThreadID() -> UInt { UInt(pthread_self()) }
