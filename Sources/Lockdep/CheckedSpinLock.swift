public import Glibc

/// A non-sleeping spinlock checked by the validator (the kernel's `spinlock_t`), usable in
/// hardirq ("ISR") and softirq context.
///
/// Holding a spinlock makes the context atomic: acquiring a sleeping lock, waiting on a
/// condition or calling `mightSleep()` inside is reported. A spinlock taken in hardirq context
/// must be taken with interrupts disabled everywhere else (``withLockIRQ(fileID:line:function:_:)``,
/// the analogue of `spin_lock_irqsave`), or "inconsistent lock state" is reported.
public struct CheckedSpinLock: LockdepLock, @unchecked Sendable {
    @usableFromInline let storage: LockStorage<pthread_spinlock_t>

    /// Creates a spinlock.
    ///
    /// - Parameters:
    ///   - name: The class name for reports; defaults to `"spinlock@File.swift:line"`. A lock
    ///     that joins the class another name made at this declaration site keeps `name` as its
    ///     instance name, as ``CheckedMutex/init(_:class:fileID:line:function:)`` does.
    ///   - lockClass: An explicit class; `nil` makes (or joins) the class of this declaration site.
    ///   - raw: Whether this is a raw spinlock (the kernel's `raw_spinlock_t`, `LD_WAIT_SPIN`):
    ///     one that spins even on PREEMPT_RT, so it may be taken in a hardirq context that is not
    ///     threaded, and inside it only raw spinlocks may be taken ("BUG: Invalid wait context"
    ///     otherwise). The class records it. Default `false` (`spinlock_t`).
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    ///   - function: The declaration site (default `#function`).
    public init(_ name: String? = nil, class lockClass: LockClass? = nil, raw: Bool = false, fileID: StaticString = #fileID,
                line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        let cls = lockClass ?? LockClass(name ?? "spinlock@\(site.fileName):\(line)", fileID: fileID, line: line)
        if raw { Engine.setRawSpinning(id: cls.id) }
        storage = .make(cls, declared: site, primitive: pthread_spinlock_t()) { p in
            pthread_spin_init(p, Int32(PTHREAD_PROCESS_PRIVATE))
        }
        Lockdep.keepNameIfJoined(self, name: name, explicitClass: lockClass != nil)
    }

    /// The class of the lock.
    public var lockClass: LockClass { storage.header.lockClass }
    /// The identity of this lock.
    public var lockdepInstance: UnsafeRawPointer { storage.instance }

    /// Whether the calling thread holds the spinlock.
    ///
    /// Exact in every build, checks compiled in or out: it reads the owner word every
    /// acquire records (one relaxed store per acquire and release where checks are compiled out).
    /// - Complexity: O(1): one relaxed load.
    public var isHeldByCurrentThread: Bool { storage.isOwnedByCurrentThread }

    /// Acquires the spinlock, spinning until it is available.
    ///
    /// Called by the thread that already holds the spinlock (which would spin forever), it
    /// reports ``LockdepReport/Kind/recursiveLocking`` through ``Lockdep/reportHandler`` and
    /// returns at once without a second acquisition: the thread still holds the spinlock once,
    /// and the matching ``unlock(fileID:line:function:)`` releases nothing. This holds in every
    /// build, checks compiled in or out.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable @inline(__always)
    public func lock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _checkedLock(subclass: 0, call: "CheckedSpinLock.lock()", site: LockdepSite(fileID: fileID, line: line, function: function))
        #else
        _plainLock(call: "CheckedSpinLock.lock()", fileID: fileID, line: line, function: function)
        #endif
    }

    /// Acquires the spinlock as subclass `subclass` of its class (`spin_lock_nested`).
    ///
    /// Called by the thread that already holds this spinlock, it is reported and refused as
    /// ``lock(fileID:line:function:)`` is.
    ///
    /// - Parameters:
    ///   - subclass: 0...7.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable
    public func lock(subclass: Int, fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _checkedLock(subclass: UInt8(truncatingIfNeeded: subclass), call: "CheckedSpinLock.lock(subclass:)",
                     site: LockdepSite(fileID: fileID, line: line, function: function))
        #else
        _plainLock(call: "CheckedSpinLock.lock(subclass:)", fileID: fileID, line: line, function: function)
        #endif
    }

    /// Tries to acquire the spinlock without spinning.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    /// - Returns: Whether the spinlock was acquired (`false` when it is held, by this thread too).
    @inlinable
    public func tryLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) -> Bool {
        guard pthread_spin_trylock(storage.primitivePointer) == 0 else { return false }
        #if LOCKDEP_CHECKS
        let token = Engine.acquire(classID: storage.classID, subclass: 0, instance: storage.instance, mode: .write,
                                   flags: AcquireFlag.trylock | AcquireFlag.atomic, nest: nil,
                                   site: LockdepSite(fileID: fileID, line: line, function: function))
        storage.setOwner(token)
        #else
        storage.setOwner(thread: LockStorage<pthread_spinlock_t>.currentThread)
        #endif
        return true
    }

    /// Releases the spinlock.
    ///
    /// Called by a thread that does not hold the spinlock (which would let a second thread into
    /// the critical section), it reports ``LockdepReport/Kind/unlockNotHeld``,
    /// ``LockdepReport/Kind/unlockFromOtherThread`` or ``LockdepReport/Kind/doubleUnlock``
    /// through ``Lockdep/reportHandler`` and releases nothing. The release matching a refused
    /// recursive ``lock(fileID:line:function:)`` releases nothing. Both hold in every build.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable @inline(__always)
    public func unlock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        let thread = Engine.fastThread()
        if storage.fastExclusiveRelease(thread, knownFlags: AcquireFlag.atomic) {
            pthread_spin_unlock(storage.primitivePointer)
            return
        }
        _slowUnlock(site: LockdepSite(fileID: fileID, line: line, function: function), thread: thread)
        #else
        _plainUnlock(endOfScope: false, call: "CheckedSpinLock.unlock()", fileID: fileID, line: line, function: function)
        #endif
    }

    /// Runs `body` holding the spinlock.
    ///
    /// Called by the thread that already holds the spinlock, it reports
    /// ``LockdepReport/Kind/recursiveLocking`` through ``Lockdep/reportHandler`` and runs `body`
    /// under the hold the thread already has, acquiring and releasing nothing. The spinlock is
    /// released when `body` returns even if `body` left a refused ``lock(fileID:line:function:)``
    /// unmatched.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    ///   - body: The critical section (must not sleep).
    /// - Returns: What `body` returns.
    @inlinable @inline(__always)
    public func withLock<R, E: Error>(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function,
                                      _ body: () throws(E) -> R) throws(E) -> R {
        #if LOCKDEP_CHECKS
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        let thread = Engine.fastThread()
        if _slowPath(storage.isOwned(by: thread)) {
            storage.refuseRecursiveAcquire(subclass: 0, mode: .write, counted: false, call: "CheckedSpinLock.withLock(_:)", site: site)
            return try body()
        }
        _checkedLock(subclass: 0, site: site, thread: thread, scoped: true)
        defer {
            storage.endScope(thread)
            if storage.fastExclusiveRelease(thread, knownFlags: AcquireFlag.atomic) {
                pthread_spin_unlock(storage.primitivePointer)
            } else {
                _checkedUnlock(site: site, thread: thread)
            }
        }
        #else
        let me = LockStorage<pthread_spinlock_t>.currentThread
        if _slowPath(storage.isOwned(by: me)) {
            storage.refuseRecursiveAcquire(me, mode: .write, counted: false, call: "CheckedSpinLock.withLock(_:)",
                                           site: LockdepSite(fileID: fileID, line: line, function: function))
            return try body()
        }
        pthread_spin_lock(storage.primitivePointer)
        storage.setOwner(thread: me)
        defer { _plainUnlock(endOfScope: true, call: "CheckedSpinLock.withLock(_:)", fileID: fileID, line: line, function: function) }
        #endif
        return try body()
    }

    /// Runs `body` holding the spinlock with hardirqs "disabled" (`spin_lock_irqsave`): the form
    /// process-context code must use for a spinlock that hardirq code also takes.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    ///   - body: The critical section (must not sleep).
    /// - Returns: What `body` returns.
    @inlinable
    public func withLockIRQ<R, E: Error>(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function,
                                         _ body: () throws(E) -> R) throws(E) -> R {
        try Lockdep.withInterruptsDisabled(.hardirq) { () throws(E) -> R in
            try withLock(fileID: fileID, line: line, function: function, body)
        }
    }

    #if !LOCKDEP_CHECKS
    /// An acquire with checks compiled out: the owner word refuses one by the holder.
    @inlinable @inline(__always)
    func _plainLock(call: StaticString, fileID: StaticString, line: UInt, function: StaticString) {
        let me = LockStorage<pthread_spinlock_t>.currentThread
        if _slowPath(storage.isOwned(by: me)) {
            storage.refuseRecursiveAcquire(me, mode: .write, counted: true, call: call,
                                           site: LockdepSite(fileID: fileID, line: line, function: function))
            return
        }
        pthread_spin_lock(storage.primitivePointer)
        storage.setOwner(thread: me)
    }

    /// A release with checks compiled out: the owner word refuses one by a thread that does not hold it.
    @inlinable @inline(__always)
    func _plainUnlock(endOfScope: Bool, call: StaticString, fileID: StaticString, line: UInt, function: StaticString) {
        let me = LockStorage<pthread_spinlock_t>.currentThread
        let word = storage.ownerWord()
        if _fastPath(word == me) {
            storage.clearOwnerThread()
        } else if !storage.releaseSlowPath(me, word: word, endOfScope: endOfScope, call: call,
                                           site: LockdepSite(fileID: fileID, line: line, function: function)) {
            return
        }
        pthread_spin_unlock(storage.primitivePointer)
    }
    #endif

    #if LOCKDEP_CHECKS
    /// `unlock()` off its fast path: a refused nested acquire's release, misuse, validation off,
    /// an out-of-order release.
    @usableFromInline @inline(never)
    func _slowUnlock(site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?) {
        if storage.consumeRefusal(thread) { return }
        _checkedUnlock(site: site, thread: thread)
    }

    @inlinable @inline(__always)
    func _checkedUnlock(site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?) {
        guard let word = storage.validateRelease(site: site, thread: thread) else { return }
        storage.clearOwner(word)
        pthread_spin_unlock(storage.primitivePointer)
    }

    /// `lock()` and its variants: refused (and counted) when this thread holds the spinlock already.
    @inlinable @inline(__always)
    func _checkedLock(subclass: UInt8, call: StaticString, site: LockdepSite) {
        let thread = Engine.fastThread()
        if _slowPath(storage.isOwned(by: thread)) {
            storage.refuseRecursiveAcquire(subclass: subclass, mode: .write, counted: true, call: call, site: site)
            return
        }
        _checkedLock(subclass: subclass, site: site, thread: thread)
    }

    @inlinable @inline(__always)
    func _checkedLock(subclass: UInt8, site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?,
                      scoped: Bool = false) {
        let token = Engine.fastAcquire(classID: storage.classID, subclass: subclass, instance: storage.instance,
                                       mode: .write, flags: AcquireFlag.atomic, site: site, thread: thread)
        storage.lockMeasured(token, site: site) { pthread_spin_trylock($0) } lock: { pthread_spin_lock($0) }
        storage.setOwner(token, scoped: scoped, thread: thread)
    }
    #endif
}
