#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// State guarded by a pthread mutex, for the package's slow paths
/// (diagnostic handlers, the stall watchdog).
///
/// Why not `Synchronization.Mutex`: on Linux its contended path is a futex in
/// the uninstrumented standard library, so ThreadSanitizer reports the state
/// it guards as racing. pthread mutexes are intercepted by TSan.
final class Locked<State>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var state: State

    init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let status = pthread_mutex_init(mutex, nil)
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// For a `pthread_atfork` child handler: makes the mutex unlocked again. The thread that
    /// held it at the fork does not exist in the child, which would otherwise wait for it
    /// forever; the state is kept (guarded state here is changed in a few stores at most).
    func reinitializeInForkedChild() {
        let status = pthread_mutex_init(mutex, nil)
        precondition(status == 0, "pthread_mutex_init failed in a forked child: \(status)")
    }

    func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
