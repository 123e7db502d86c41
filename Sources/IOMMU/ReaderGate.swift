#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The registry-wide lock of the benchmark's baselines (``ReaderSynchronization/rwlock`` and
/// ``ReaderSynchronization/mutex``): readers take it shared (or exclusive), every public writer
/// operation exclusive. With ``ReaderSynchronization/rcu`` it does nothing.
final class ReaderGate: @unchecked Sendable {
    let mode: ReaderSynchronization
    private let rwlock: UnsafeMutablePointer<pthread_rwlock_t>
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ mode: ReaderSynchronization) {
        self.mode = mode
        rwlock = .allocate(capacity: 1)
        rwlock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(rwlock, nil)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_rwlock_destroy(rwlock)
        pthread_mutex_destroy(mutex)
        rwlock.deallocate()
        mutex.deallocate()
    }

    @inline(__always)
    func read<R>(_ body: () throws -> R) rethrows -> R {
        switch mode {
        case .rcu:
            return try body()
        case .rwlock:
            pthread_rwlock_rdlock(rwlock)
            defer { pthread_rwlock_unlock(rwlock) }
            return try body()
        case .mutex:
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return try body()
        }
    }

    @inline(__always)
    func write<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        switch mode {
        case .rcu:
            return try body()
        case .rwlock:
            pthread_rwlock_wrlock(rwlock)
            defer { pthread_rwlock_unlock(rwlock) }
            return try body()
        case .mutex:
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return try body()
        }
    }
}
