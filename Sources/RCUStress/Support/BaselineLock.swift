#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A pthread lock guarding the `urcu` baselines' pointer (liburcu's test_rwlock and test_mutex).
protocol BaselineLock: AnyObject, Sendable {
    init()
    func readLock()
    func readUnlock()
    func writeLock()
    func writeUnlock()
}

/// `pthread_rwlock_t`: readers share it, writers exclude everyone.
final class BaselineRWLock: BaselineLock, @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    @inline(__always) func readLock() { pthread_rwlock_rdlock(lock) }
    @inline(__always) func readUnlock() { pthread_rwlock_unlock(lock) }
    @inline(__always) func writeLock() { pthread_rwlock_wrlock(lock) }
    @inline(__always) func writeUnlock() { pthread_rwlock_unlock(lock) }
}

/// `pthread_mutex_t`: readers and writers alike take it.
final class BaselineMutex: BaselineLock, @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always) func readLock() { pthread_mutex_lock(mutex) }
    @inline(__always) func readUnlock() { pthread_mutex_unlock(mutex) }
    @inline(__always) func writeLock() { pthread_mutex_lock(mutex) }
    @inline(__always) func writeUnlock() { pthread_mutex_unlock(mutex) }
}
