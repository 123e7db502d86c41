public import Glibc   // `timespec` in the signature of `monotonicDeadline(after:)`, which inlinable waits call

/// The package's one internal lock: a pthread mutex whose every call is checked.
///
/// The slow paths of RCU, Lockdep and IOMMU (diagnostic handlers, the stall watchdog, the
/// work queues' bookkeeping, the registry's tables) take it; it is never validated by
/// Lockdep itself. A pthread call that fails stops the process with a message naming the
/// call and its error (`EDEADLK`, `EPERM`, ...) instead of carrying on unlocked. Debug builds
/// use an error-checking mutex (`PTHREAD_MUTEX_ERRORCHECK`), so locking it twice on one
/// thread or unlocking it from a thread that does not hold it stops at the faulty call
/// instead of hanging or corrupting what it guards; release builds use the default mutex.
///
/// Why pthread and not `Synchronization.Mutex`: on Linux the latter's contended path is a
/// futex in the uninstrumented standard library, so ThreadSanitizer would report what it
/// guards as racing; pthread mutexes are intercepted by TSan.
///
/// `lock()`, `unlock()` and `withLock(_:)` are inlinable, as NIOLock's are: a caller in another
/// module (the registry's mutex baseline, `RCUWriterMutex`) calls `pthread_mutex_lock`
/// directly, with one compare of its result.
///
/// `package` access: shared by the package's modules and tests, not part of any product.
package final class InternalLock: @unchecked Sendable {
    /// Stable address for the mutex (a class's stored property may move in memory).
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let checksOwner: Bool

    /// Creates an unlocked mutex (error-checking in debug builds).
    ///
    /// `checksOwner: false`: the default mutex in every build, for a caller that refuses a
    /// recursive lock or a foreign unlock itself by an owner that survives `fork()`. The
    /// thread that forks goes on in the child under another kernel thread id, so an
    /// error-checking mutex it held refuses its unlock there.
    package init(checksOwner: Bool = true) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        self.checksOwner = checksOwner
        Self.initialize(mutex, checksOwner: checksOwner)
    }

    deinit {
        // EBUSY here is a lock destroyed while held: a bug in its owner.
        checkPthread(pthread_mutex_destroy(mutex), "pthread_mutex_destroy")
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    private static func initialize(_ mutex: UnsafeMutablePointer<pthread_mutex_t>, checksOwner: Bool) {
        var attributes = pthread_mutexattr_t()
        checkPthread(pthread_mutexattr_init(&attributes), "pthread_mutexattr_init")
        #if DEBUG
        if checksOwner {
            checkPthread(pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ERRORCHECK)), "pthread_mutexattr_settype")
        }
        #endif
        checkPthread(pthread_mutex_init(mutex, &attributes), "pthread_mutex_init")
        checkPthread(pthread_mutexattr_destroy(&attributes), "pthread_mutexattr_destroy")
    }

    /// Acquires the mutex, blocking until it is free.
    @inlinable
    package func lock() {
        checkPthread(pthread_mutex_lock(mutex), "pthread_mutex_lock")
    }

    /// Releases the mutex, which the calling thread must hold.
    @inlinable
    package func unlock() {
        checkPthread(pthread_mutex_unlock(mutex), "pthread_mutex_unlock")
    }

    /// Runs `body` with the mutex held.
    /// - Returns: What `body` returns.
    @inlinable
    package func withLock<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        lock()
        defer { unlock() }
        return try body()
    }

    /// For a `pthread_atfork` child handler: makes the mutex unlocked again. The thread that
    /// held it at the `fork()` does not exist in the child, which would otherwise wait for it
    /// forever. Only the child's single thread may call it, before any other use.
    package func reinitializeInForkedChild() {
        Self.initialize(mutex, checksOwner: checksOwner)
    }

    /// Waits on `condition`, releasing the mutex while it waits; the caller holds the mutex
    /// (inside ``withLock(_:)``) and holds it again on return. Wakeups may be spurious: wait
    /// in a loop on the guarded state.
    package func wait(for condition: InternalCondition) {
        checkPthread(pthread_cond_wait(condition.pointer, mutex), "pthread_cond_wait")
    }

    /// Waits on `condition` as ``wait(for:)`` does, until `deadline` at the latest.
    /// - Returns: `false` when the deadline passed, `true` when woken (perhaps spuriously).
    package func wait(for condition: InternalCondition, until deadline: InternalCondition.Deadline) -> Bool {
        var time = deadline.time
        let status = pthread_cond_timedwait(condition.pointer, mutex, &time)
        if status == ETIMEDOUT { return false }
        checkPthread(status, "pthread_cond_timedwait")
        return true
    }
}

/// A condition variable for ``InternalLock`` (on `CLOCK_MONOTONIC`, so a timed wait is not
/// moved by changes to the wall clock). Every pthread call is checked.
package final class InternalCondition: @unchecked Sendable {
    /// Stable address for the condition.
    fileprivate let pointer: UnsafeMutablePointer<pthread_cond_t>

    /// A point on `CLOCK_MONOTONIC`, for ``InternalLock/wait(for:until:)``.
    package struct Deadline: Sendable {
        fileprivate let time: timespec

        /// The deadline `duration` from now (negative durations are now; huge ones saturate).
        package static func after(_ duration: Duration) -> Deadline {
            Deadline(time: monotonicDeadline(after: duration))
        }
    }

    /// Creates a condition variable on `CLOCK_MONOTONIC`.
    package init() {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        checkPthread(pthread_condattr_init(&attributes), "pthread_condattr_init")
        checkPthread(pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC), "pthread_condattr_setclock")
        checkPthread(pthread_cond_init(pointer, &attributes), "pthread_cond_init")
        checkPthread(pthread_condattr_destroy(&attributes), "pthread_condattr_destroy")
    }

    deinit {
        checkPthread(pthread_cond_destroy(pointer), "pthread_cond_destroy")
        pointer.deinitialize(count: 1)
        pointer.deallocate()
    }

    /// Wakes one waiter.
    package func signal() {
        checkPthread(pthread_cond_signal(pointer), "pthread_cond_signal")
    }

    /// Wakes every waiter.
    package func broadcast() {
        checkPthread(pthread_cond_broadcast(pointer), "pthread_cond_broadcast")
    }
}

/// A value guarded by an ``InternalLock``: the only way to reach it is ``withLock(_:)``.
package final class InternalLockedValue<Value>: @unchecked Sendable {
    /// The lock (for a child handler's ``InternalLock/reinitializeInForkedChild()``).
    package let lock = InternalLock()
    @usableFromInline var value: Value

    /// Creates the guarded value.
    package init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with the lock held and the value open for change.
    /// - Returns: What `body` returns.
    @inlinable
    package func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// The `CLOCK_MONOTONIC` time `duration` from now, for `pthread_cond_timedwait` on a
/// monotonic condition: a negative duration is now, and the sum saturates at the largest
/// `timespec` (no arithmetic here can overflow, whatever the duration).
@usableFromInline
func monotonicDeadline(after duration: Duration) -> timespec {
    var now = timespec()
    checkPthread(clock_gettime(CLOCK_MONOTONIC, &now) == 0 ? 0 : errno, "clock_gettime")
    let (seconds, attoseconds) = max(duration, .zero).components
    // tv_nsec < 1e9 and the fraction < 1e9: their sum fits, and carries at most one second.
    var nanoseconds = now.tv_nsec + Int(attoseconds / 1_000_000_000)
    var carry = 0
    if nanoseconds >= 1_000_000_000 {
        nanoseconds -= 1_000_000_000
        carry = 1
    }
    let (sum, overflow) = now.tv_sec.addingReportingOverflow(Int(seconds))
    let (total, carried) = sum.addingReportingOverflow(carry)
    guard !overflow, !carried else { return timespec(tv_sec: Int.max, tv_nsec: 999_999_999) }
    return timespec(tv_sec: total, tv_nsec: nanoseconds)
}

/// Stops the process when a pthread call failed, naming the call and its error.
///
/// For the package's own locks (and the benchmarks' raw pthread baselines): a failing lock
/// call means the lock is misused or corrupt, and going on would run a critical section
/// unlocked. `fatalError`, not `precondition`, so the message survives release builds.
/// - Parameters:
///   - status: What the call returned (0 on success, else an `errno` value).
///   - call: The pthread function's name.
@inlinable
package func checkPthread(_ status: Int32, _ call: StaticString, fileID: StaticString = #fileID, line: UInt = #line) {
    if _slowPath(status != 0) { pthreadCallFailed(status, call, fileID: fileID, line: line) }
}

@usableFromInline @inline(never)
func pthreadCallFailed(_ status: Int32, _ call: StaticString, fileID: StaticString, line: UInt) -> Never {
    let message = "\(call) failed: \(errnoName(status)) (\(status)): \(String(cString: strerror(status)))"
    fatalError(message, file: fileID, line: line)
}

/// The symbolic name of the errors pthread calls return.
package func errnoName(_ code: Int32) -> String {
    switch code {
    case EDEADLK: "EDEADLK"
    case EPERM: "EPERM"
    case EBUSY: "EBUSY"
    case EINVAL: "EINVAL"
    case EAGAIN: "EAGAIN"
    case ENOMEM: "ENOMEM"
    case ETIMEDOUT: "ETIMEDOUT"
    case EOWNERDEAD: "EOWNERDEAD"
    case ENOTRECOVERABLE: "ENOTRECOVERABLE"
    default: "errno \(code)"
    }
}
