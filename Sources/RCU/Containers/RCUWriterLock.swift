#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// The lock that serialises the writers of an RCU container, as named by its
/// creator: the update-side lock of the kernel's `list_add_rcu` family.
///
/// RCU lets readers run concurrently with one writer; writers must still
/// exclude each other. A container created with a writer lock checks, on every
/// mutation, that the calling thread holds it (the kernel's
/// `lockdep_assert_held`), and reports a mutation without it as
/// ``RCUMisuse/Kind/mutationWithoutLock``.
///
/// Conform any lock that can tell whether the calling thread holds it.
/// ``RCUWriterMutex`` is the package's own; Lockdep's checked locks conform
/// too.
public protocol RCUWriterLock: Sendable {
    /// Whether the calling thread holds this lock.
    ///
    /// A lock that cannot tell (for example when its checks are compiled
    /// out) returns `true`, which disables the container's check.
    var isHeldByCurrentThread: Bool { get }
}

/// A pthread mutex that records its owner thread, so RCU containers can check
/// that their writers hold it.
///
/// ```swift
/// let lock = RCUWriterMutex()
/// let devices = RCUList<Device, RCUMemb>(lock: lock)
/// lock.withLock { devices.append(device) }
/// ```
///
/// Not recursive: locking it twice on one thread deadlocks (as the kernel's
/// mutexes do). ThreadSanitizer sees it (unlike `Synchronization.Mutex` on Linux).
public final class RCUWriterMutex: RCUWriterLock, @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// `pthread_self()` of the holder, 0 when unlocked.
    private let owner = Atomic<UInt>(0)

    /// Creates an unlocked mutex.
    public init() {
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

    /// Acquires the mutex, blocking until it is free.
    public func lock() {
        pthread_mutex_lock(mutex)
        owner.store(UInt(pthread_self()), ordering: .relaxed)
    }

    /// Releases the mutex. The calling thread must hold it.
    public func unlock() {
        owner.store(0, ordering: .relaxed)
        pthread_mutex_unlock(mutex)
    }

    /// Runs `body` with the mutex held.
    /// - Parameter body: The critical section.
    /// - Returns: What `body` returns.
    public func withLock<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Whether the calling thread holds the mutex.
    /// - Complexity: O(1), one relaxed load.
    public var isHeldByCurrentThread: Bool {
        owner.load(ordering: .relaxed) == UInt(pthread_self())
    }
}
