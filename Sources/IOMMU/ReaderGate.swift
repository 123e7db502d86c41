#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Lockdep

/// The registry-wide lock of the benchmark's baselines (``ReaderSynchronization/rwlock`` and
/// ``ReaderSynchronization/mutex``): readers take it shared (or exclusive), every public writer
/// operation exclusive. With ``ReaderSynchronization/rcu`` it does nothing.
///
/// The rwlock is a raw `pthread_rwlock_t` (the package's ``InternalLock`` is a mutex): the
/// baseline measures what a plain reader-writer lock costs. Its calls are checked all the same.
final class ReaderGate: @unchecked Sendable {
    let mode: ReaderSynchronization
    private let rwlock: UnsafeMutablePointer<pthread_rwlock_t>
    private let mutex = InternalLock()

    init(_ mode: ReaderSynchronization) {
        self.mode = mode
        rwlock = .allocate(capacity: 1)
        rwlock.initialize(to: pthread_rwlock_t())
        checkPthread(pthread_rwlock_init(rwlock, nil), "pthread_rwlock_init")
    }

    deinit {
        checkPthread(pthread_rwlock_destroy(rwlock), "pthread_rwlock_destroy")
        rwlock.deinitialize(count: 1)
        rwlock.deallocate()
    }

    @inline(__always)
    func read<R>(_ body: () throws -> R) rethrows -> R {
        switch mode {
        case .rcu:
            return try body()
        case .rwlock:
            checkPthread(pthread_rwlock_rdlock(rwlock), "pthread_rwlock_rdlock")
            defer { checkPthread(pthread_rwlock_unlock(rwlock), "pthread_rwlock_unlock") }
            return try body()
        case .mutex:
            mutex.lock()
            defer { mutex.unlock() }
            return try body()
        }
    }

    @inline(__always)
    func write<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        switch mode {
        case .rcu:
            return try body()
        case .rwlock:
            checkPthread(pthread_rwlock_wrlock(rwlock), "pthread_rwlock_wrlock")
            defer { checkPthread(pthread_rwlock_unlock(rwlock), "pthread_rwlock_unlock") }
            return try body()
        case .mutex:
            return try mutex.withLock(body)
        }
    }
}

/// The calling thread's pthread id, for ownership checks.
@inline(__always)
func currentThreadID() -> UInt { UInt(pthread_self()) }
