internal import Glibc

/// An unchecked pthread mutex plus two condition variables, for the work queue's own
/// bookkeeping (never visible to the validator).
final class Monitor: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let work = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let idle = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        mutex.initialize(to: pthread_mutex_t())
        work.initialize(to: pthread_cond_t())
        idle.initialize(to: pthread_cond_t())
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(work, nil)
        pthread_cond_init(idle, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(work)
        pthread_cond_destroy(idle)
        mutex.deallocate(); work.deallocate(); idle.deallocate()
    }

    func locked<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Must be called with the mutex held.
    func waitForWork() { pthread_cond_wait(work, mutex) }
    /// Must be called with the mutex held.
    func waitForIdle() { pthread_cond_wait(idle, mutex) }
    func signalWork() { pthread_cond_signal(work) }
    func broadcastWork() { pthread_cond_broadcast(work) }
    func broadcastIdle() { pthread_cond_broadcast(idle) }
}

/// A value guarded by a plain pthread mutex (visible to ThreadSanitizer, unlike a futex-based
/// lock), for the validator's own shared state. Never validated itself.
final class LockedBox<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
