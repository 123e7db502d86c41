#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A pthread lock: the baselines the benchmarks measure RCU against (liburcu's test_rwlock
/// and test_mutex, the containers' rwlock variants), and, as ``BaselineMutex``, the
/// harness's own bookkeeping lock (collecting results; visible to ThreadSanitizer, never
/// on a measured path).
protocol BaselineLock: AnyObject, Sendable {
    init()
    func readLock()
    func readUnlock()
    func writeLock()
    func writeUnlock()

    /// The same calls, returning the pthread function's result (0, or an error number),
    /// for the `urcu` baselines (see ``checkedByLiburcu``).
    func readLockStatus() -> Int32
    func readUnlockStatus() -> Int32
    func writeLockStatus() -> Int32
    func writeUnlockStatus() -> Int32

    /// The pthread functions behind the calls, to name a failed one.
    static var readLockName: StaticString { get }
    static var writeLockName: StaticString { get }
    static var unlockName: StaticString { get }
    /// Whether liburcu's program for this lock checks each call's result: test_rwlock
    /// does (`if (ret) abort()`), test_mutex does not; the `urcu` baseline does the same.
    static var checkedByLiburcu: Bool { get }
}

extension BaselineLock {
    /// Runs `body` holding the lock for reading (shared, for an rwlock).
    @inline(__always)
    func withReadLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        readLock()
        defer { readUnlock() }
        return try body()
    }

    /// Runs `body` holding the lock exclusively.
    @inline(__always)
    func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        writeLock()
        defer { writeUnlock() }
        return try body()
    }
}

/// `pthread_rwlock_t`: readers share it, writers exclude everyone.
final class BaselineRWLock: BaselineLock, @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        let status = pthread_rwlock_init(lock, nil)
        precondition(status == 0, "pthread_rwlock_init failed: \(status)")
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    @inline(__always) func readLock() { pthread_rwlock_rdlock(lock) }
    @inline(__always) func readUnlock() { pthread_rwlock_unlock(lock) }
    @inline(__always) func writeLock() { pthread_rwlock_wrlock(lock) }
    @inline(__always) func writeUnlock() { pthread_rwlock_unlock(lock) }

    @inline(__always) func readLockStatus() -> Int32 { pthread_rwlock_rdlock(lock) }
    @inline(__always) func readUnlockStatus() -> Int32 { pthread_rwlock_unlock(lock) }
    @inline(__always) func writeLockStatus() -> Int32 { pthread_rwlock_wrlock(lock) }
    @inline(__always) func writeUnlockStatus() -> Int32 { pthread_rwlock_unlock(lock) }

    static var readLockName: StaticString { "pthread_rwlock_rdlock" }
    static var writeLockName: StaticString { "pthread_rwlock_wrlock" }
    static var unlockName: StaticString { "pthread_rwlock_unlock" }
    static var checkedByLiburcu: Bool { true }
}

/// `pthread_mutex_t`: readers and writers alike take it.
final class BaselineMutex: BaselineLock, @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let status = pthread_mutex_init(mutex, nil)
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always) func readLock() { pthread_mutex_lock(mutex) }
    @inline(__always) func readUnlock() { pthread_mutex_unlock(mutex) }
    @inline(__always) func writeLock() { pthread_mutex_lock(mutex) }
    @inline(__always) func writeUnlock() { pthread_mutex_unlock(mutex) }

    @inline(__always) func readLockStatus() -> Int32 { pthread_mutex_lock(mutex) }
    @inline(__always) func readUnlockStatus() -> Int32 { pthread_mutex_unlock(mutex) }
    @inline(__always) func writeLockStatus() -> Int32 { pthread_mutex_lock(mutex) }
    @inline(__always) func writeUnlockStatus() -> Int32 { pthread_mutex_unlock(mutex) }

    static var readLockName: StaticString { "pthread_mutex_lock" }
    static var writeLockName: StaticString { "pthread_mutex_lock" }
    static var unlockName: StaticString { "pthread_mutex_unlock" }
    static var checkedByLiburcu: Bool { false }

    /// Waits on `condition`, releasing the mutex meanwhile (the caller holds it).
    func wait(on condition: UnsafeMutablePointer<pthread_cond_t>) {
        pthread_cond_wait(condition, mutex)
    }
}

/// A value behind a lock: ``withReadLock(_:)`` shares it with other readers (for an
/// rwlock), ``withLock(_:)`` changes it alone.
final class Locked<Value, Lock: BaselineLock>: @unchecked Sendable {
    private let lock = Lock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withReadLock<Result>(_ body: (Value) throws -> Result) rethrows -> Result {
        try lock.withReadLock { try body(value) }
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try lock.withLock { try body(&value) }
    }
}
