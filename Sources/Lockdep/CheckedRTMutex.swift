internal import Glibc

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
    /// The holder, its owner word and its refused recursive acquires.
    private let hold = ExclusiveHold()

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
        if hold.isHeld {
            KernelLockSupport.destroyedWhileHeld(lockClass, instance: lockdepInstance, ownerWord: hold.word, declared: declared)
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
        if hold.isHeldByCaller {
            hold.refuse()
            KernelLockSupport.refuseRecursive(self, subclass: subclass, call: "CheckedRTMutex.lock()", site: site)
            return
        }
        let word = KernelLockSupport.acquire(lockClass, subclass: subclass, instance: lockdepInstance, mode: .write,
                                             sleeping: true, atomic: false, site: site)
        pthread_mutex_lock(mutex)
        hold.take(word: word)
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
        if hold.consumeRefusal() { return }
        guard KernelLockSupport.release(lockClass, instance: lockdepInstance, ownerWord: hold.word, site: site),
              hold.isHeldByCaller else { return }
        hold.release()
        pthread_mutex_unlock(mutex)
    }
}
