internal import Glibc
internal import Synchronization

/// A sleeping mutex with priority inheritance, checked by the validator (the kernel's
/// `rt_mutex`): a `pthread_mutex_t` with the `PTHREAD_PRIO_INHERIT` protocol.
///
/// For Lockdep it is an exclusive sleeping lock, exactly as the kernel validates `rt_mutex`:
/// taking it in an atomic context, in a cycle, or twice is reported. A thread that takes the
/// mutex it already holds gets the report and does not deadlock: the acquire is refused, and
/// the matching ``unlock(fileID:line:function:)`` releases nothing.
public final class CheckedRTMutex: LockdepLock, @unchecked Sendable {
    /// The class of the mutex.
    public let lockClass: LockClass
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let declared: LockdepSite
    private let ownerWordAtomic = Atomic<UInt>(0)
    /// The owner word of the hold (`serial << 1 | 1` while held).
    /// Relaxed atomic: a contending thread reads it for its recursion test.
    private var ownerWord: UInt {
        get { ownerWordAtomic.load(ordering: .relaxed) }
        set { ownerWordAtomic.store(newValue, ordering: .relaxed) }
    }
    private let ownerThreadAtomic = Atomic<UInt>(0)
    /// The holder's `pthread_self` (0 when free).
    /// Relaxed atomic: a contending thread reads it for its recursion test.
    private var ownerThread: UInt {
        get { ownerThreadAtomic.load(ordering: .relaxed) }
        set { ownerThreadAtomic.store(newValue, ordering: .relaxed) }
    }
    /// The holder's refused recursive acquires not yet matched by an unlock (each such unlock
    /// releases nothing). Only the holder reads or writes it.
    private var refusals = 0

    /// Creates a mutex.
    ///
    /// - Parameters:
    ///   - name: The class name for reports; defaults to `"rtmutex@File.swift:line"`.
    ///   - lockClass: An explicit class; `nil` makes (or joins) the class of this declaration site.
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    ///   - function: The declaration site (default `#function`).
    public init(_ name: String? = nil, class lockClass: LockClass? = nil, fileID: StaticString = #fileID,
                line: UInt = #line, function: StaticString = #function) {
        declared = LockdepSite(fileID: fileID, line: line, function: function)
        self.lockClass = lockClass ?? LockClass(name ?? "rtmutex@\(declared.fileName):\(line)", fileID: fileID, line: line)
        mutex = .allocate(capacity: 1)
        var attr = pthread_mutexattr_t()
        pthread_mutexattr_init(&attr)
        pthread_mutexattr_settype(&attr, Int32(PTHREAD_MUTEX_ERRORCHECK))
        pthread_mutexattr_setprotocol(&attr, Int32(PTHREAD_PRIO_INHERIT))
        pthread_mutex_init(mutex, &attr)
        pthread_mutexattr_destroy(&attr)
    }

    deinit {
        if ownerWord & 1 != 0 {
            KernelLockSupport.destroyedWhileHeld(lockClass, instance: lockdepInstance, ownerWord: ownerWord, declared: declared)
            return   // leaked: a held primitive must not be destroyed
        }
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// The identity of this mutex.
    public var lockdepInstance: UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) }

    /// Acquires the mutex (`rt_mutex_lock`), sleeping until it is available.
    ///
    /// - Parameters:
    ///   - subclass: The subclass (`rt_mutex_lock_nested`), 0...7.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func lock(subclass: Int = 0, fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        if ownerThread == KernelLockSupport.currentThread && ownerWord & 1 != 0 {
            refusals += 1
            KernelLockSupport.refuseRecursive(self, subclass: subclass, call: "CheckedRTMutex.lock()", site: site)
            return
        }
        let word = KernelLockSupport.acquire(lockClass, subclass: subclass, instance: lockdepInstance, mode: .write,
                                             sleeping: true, atomic: false, site: site)
        pthread_mutex_lock(mutex)
        ownerThread = KernelLockSupport.currentThread
        ownerWord = word
    }

    /// Releases the mutex (`rt_mutex_unlock`). Releasing a mutex this thread does not hold is
    /// reported and not performed.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func unlock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        // The holder's own fields first: another thread reads no refusal count.
        if ownerThread == KernelLockSupport.currentThread && ownerWord & 1 != 0 && refusals > 0 {
            refusals -= 1
            return
        }
        guard KernelLockSupport.release(lockClass, instance: lockdepInstance, ownerWord: ownerWord, site: site),
              ownerThread == KernelLockSupport.currentThread, ownerWord & 1 != 0 else { return }
        ownerWord &= ~1
        ownerThread = 0
        pthread_mutex_unlock(mutex)
    }
}
