public import Glibc

/// A sleeping mutex checked by the validator (the kernel's `struct mutex`).
///
/// Built on `pthread_mutex_t` in a `ManagedBuffer` tail (stable address). With checks compiled
/// in, every acquire is validated against the thread's held locks (lock order, recursion,
/// context) before it blocks, so a possible deadlock is reported before it can happen; misuse
/// (unlocking a lock not held, from another thread, twice, destroying a held lock) is reported
/// and the bad operation is not forwarded to pthreads. With checks compiled out, `lock()` and
/// `unlock()` are `pthread_mutex_lock` and `pthread_mutex_unlock` plus one relaxed store of the
/// owner word, which keeps ``isHeldByCurrentThread`` exact in every build.
///
/// ```swift
/// let mutex = CheckedMutex("group->mutex")
/// mutex.withLock { group.devices.append(device) }
/// ```
///
/// Acquiring a mutex may sleep: doing so in hardirq/softirq context, with interrupts disabled,
/// under a spinlock or inside an atomic map (an RCU read section) is reported as
/// "sleeping function called from invalid context".
public struct CheckedMutex: LockdepLock, @unchecked Sendable {
    @usableFromInline let storage: LockStorage<pthread_mutex_t>

    /// Creates a mutex.
    ///
    /// - Parameters:
    ///   - name: The class name for reports; defaults to `"mutex@File.swift:line"`. A mutex
    ///     that joins the class another name made at this declaration site (a wrapper that
    ///     creates every lock on one line) keeps `name` as its instance name
    ///     (``Lockdep/setInstanceName(_:of:fileID:line:function:)``); give such locks their own
    ///     classes with `class:` (a ``LockClass`` per role) when they nest or order differently.
    ///   - lockClass: An explicit class; `nil` makes (or joins) the class of this declaration site.
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    ///   - function: The declaration site (default `#function`).
    public init(_ name: String? = nil, class lockClass: LockClass? = nil, fileID: StaticString = #fileID,
                line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        let cls = lockClass ?? LockClass(name ?? "mutex@\(site.fileName):\(line)", fileID: fileID, line: line)
        storage = .make(cls, declared: site, primitive: pthread_mutex_t()) { p in
            var attr = pthread_mutexattr_t()
            pthread_mutexattr_init(&attr)
            pthread_mutexattr_settype(&attr, Int32(PTHREAD_MUTEX_NORMAL))
            pthread_mutex_init(p, &attr)
            pthread_mutexattr_destroy(&attr)
        }
        Lockdep.keepNameIfJoined(self, name: name, explicitClass: lockClass != nil)
    }

    /// The class of the mutex.
    public var lockClass: LockClass { storage.header.lockClass }
    /// The identity of this mutex.
    public var lockdepInstance: UnsafeRawPointer { storage.instance }

    /// The address of the underlying `pthread_mutex_t`, for benchmarks that place a plain
    /// mutex at the same offset in its cache line: glibc's uncontended pair costs differ by
    /// that offset (one that splits the mutex across two lines is faster on some machines).
    @_spi(Benchmarking)
    public var primitiveAddress: UnsafeRawPointer { UnsafeRawPointer(storage.primitivePointer) }

    /// Whether the calling thread holds the mutex.
    ///
    /// Exact in every build, checks compiled in or out (unlike ``Lockdep/isHeld(_:)``, which
    /// answers `true` where checks are compiled out or validation has turned itself off): it
    /// reads the owner word every acquire records.
    /// - Complexity: O(1): one relaxed load in the common case.
    public var isHeldByCurrentThread: Bool { storage.isOwnedByCurrentThread }

    /// Acquires the mutex, blocking until it is available.
    ///
    /// Called by the thread that already holds the mutex (which would never return), it reports
    /// ``LockdepReport/Kind/recursiveLocking`` through ``Lockdep/reportHandler`` and returns at once
    /// without a second acquisition: the thread still holds the mutex once, and the matching
    /// ``unlock(fileID:line:function:)`` releases nothing. This holds in every build, checks
    /// compiled in or out.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable @inline(__always)
    public func lock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _checkedLock(subclass: 0, nest: nil, call: "CheckedMutex.lock()",
                     site: LockdepSite(fileID: fileID, line: line, function: function))
        #else
        _plainLock(call: "CheckedMutex.lock()", fileID: fileID, line: line, function: function)
        #endif
    }

    /// Acquires the mutex as subclass `subclass` of its class (`mutex_lock_nested`): a knowingly
    /// nested acquire of a second lock of the same class.
    ///
    /// Called by the thread that already holds this mutex, it is reported and refused as
    /// ``lock(fileID:line:function:)`` is.
    ///
    /// - Parameters:
    ///   - subclass: 0...7; each subclass is validated as its own class (`name/1`, ...).
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable
    public func lock(subclass: Int, fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _checkedLock(subclass: UInt8(truncatingIfNeeded: subclass), nest: nil, call: "CheckedMutex.lock(subclass:)",
                     site: LockdepSite(fileID: fileID, line: line, function: function))
        #else
        _plainLock(call: "CheckedMutex.lock(subclass:)", fileID: fileID, line: line, function: function)
        #endif
    }

    /// Acquires the mutex under a "nest lock" (`mutex_lock_nest_lock`): many instances of this
    /// class may be held at once while `outer` is held. A second lock of a class already held,
    /// taken under `outer` held before it, adds no dependency. When `outer` is not held, the
    /// acquire is reported as the kernel's "Nested lock was not taken"
    /// (``LockdepReport/Kind/assertionFailed``).
    ///
    /// Called by the thread that already holds this mutex, it is reported and refused as
    /// ``lock(fileID:line:function:)`` is.
    ///
    /// - Parameters:
    ///   - outer: The lock that serialises the nested acquires.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable
    public func lock(nestedUnder outer: some LockdepLock, fileID: StaticString = #fileID, line: UInt = #line,
                     function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _checkedLock(subclass: 0, nest: outer.lockdepInstance, call: "CheckedMutex.lock(nestedUnder:)",
                     site: LockdepSite(fileID: fileID, line: line, function: function))
        #else
        _plainLock(call: "CheckedMutex.lock(nestedUnder:)", fileID: fileID, line: line, function: function)
        #endif
    }

    /// Tries to acquire the mutex without blocking. A successful trylock adds no dependency.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    /// - Returns: Whether the mutex was acquired (`false` when it is held, by this thread too).
    @inlinable
    public func tryLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) -> Bool {
        guard pthread_mutex_trylock(storage.primitivePointer) == 0 else { return false }
        #if LOCKDEP_CHECKS
        let token = Engine.acquire(classID: storage.classID, subclass: 0, instance: storage.instance, mode: .write,
                                   flags: AcquireFlag.trylock, nest: nil,
                                   site: LockdepSite(fileID: fileID, line: line, function: function))
        storage.setOwner(token)
        #else
        storage.setOwner(thread: LockStorage<pthread_mutex_t>.currentThread)
        #endif
        return true
    }

    /// Releases the mutex.
    ///
    /// Called by a thread that does not hold the mutex (which would let a second thread into
    /// the critical section), it reports ``LockdepReport/Kind/unlockNotHeld``,
    /// ``LockdepReport/Kind/unlockFromOtherThread`` or ``LockdepReport/Kind/doubleUnlock``
    /// through ``Lockdep/reportHandler`` and releases nothing: the holder keeps the mutex. The
    /// release matching a refused recursive ``lock(fileID:line:function:)`` releases nothing.
    /// Both hold in every build, checks compiled in or out (double unlock is told apart from
    /// an unlock of a mutex never taken only with checks compiled in).
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable @inline(__always)
    public func unlock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        let thread = Engine.fastThread()
        if storage.fastExclusiveRelease(thread, knownFlags: AcquireFlag.sleeping) {
            pthread_mutex_unlock(storage.primitivePointer)
            return
        }
        _slowUnlock(site: LockdepSite(fileID: fileID, line: line, function: function), thread: thread)
        #else
        _plainUnlock(endOfScope: false, call: "CheckedMutex.unlock()", fileID: fileID, line: line, function: function)
        #endif
    }

    /// Runs `body` holding the mutex.
    ///
    /// Called by the thread that already holds the mutex, it reports
    /// ``LockdepReport/Kind/recursiveLocking`` through ``Lockdep/reportHandler`` and runs `body`
    /// under the hold the thread already has (exclusive: no other thread is in a critical
    /// section of this mutex), acquiring and releasing nothing, as a recursive mutex would.
    /// The mutex is released when `body` returns even if `body` left a refused
    /// ``lock(fileID:line:function:)`` unmatched.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    ///   - body: The critical section.
    /// - Returns: What `body` returns.
    @inlinable @inline(__always)
    public func withLock<R, E: Error>(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function,
                                      _ body: () throws(E) -> R) throws(E) -> R {
        #if LOCKDEP_CHECKS
        // One thread-state lookup for both halves.
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        let thread = Engine.fastThread()
        let word = storage.ownerWord()
        if _slowPath(storage.isOwned(by: thread, word: word)) {
            storage.refuseRecursiveAcquire(subclass: 0, mode: .write, counted: false, call: "CheckedMutex.withLock(_:)", site: site)
            return try body()
        }
        _checkedLock(subclass: 0, nest: nil, site: site, thread: thread, scoped: true, seenOwner: word)
        defer {
            storage.endScope(thread)
            if storage.fastExclusiveRelease(thread, knownFlags: AcquireFlag.sleeping) {
                pthread_mutex_unlock(storage.primitivePointer)
            } else {
                _checkedUnlock(site: site, thread: thread)
            }
        }
        #else
        let me = LockStorage<pthread_mutex_t>.currentThread
        if _slowPath(storage.isOwned(by: me)) {
            storage.refuseRecursiveAcquire(me, mode: .write, counted: false, call: "CheckedMutex.withLock(_:)",
                                           site: LockdepSite(fileID: fileID, line: line, function: function))
            return try body()
        }
        pthread_mutex_lock(storage.primitivePointer)
        storage.setOwner(thread: me)
        defer { _plainUnlock(endOfScope: true, call: "CheckedMutex.withLock(_:)", fileID: fileID, line: line, function: function) }
        #endif
        return try body()
    }

    #if !LOCKDEP_CHECKS
    /// An exclusive acquire with checks compiled out: the owner word refuses one by the holder.
    @inlinable @inline(__always)
    func _plainLock(call: StaticString, fileID: StaticString, line: UInt, function: StaticString) {
        let me = LockStorage<pthread_mutex_t>.currentThread
        if _slowPath(storage.isOwned(by: me)) {
            storage.refuseRecursiveAcquire(me, mode: .write, counted: true, call: call,
                                           site: LockdepSite(fileID: fileID, line: line, function: function))
            return
        }
        pthread_mutex_lock(storage.primitivePointer)
        storage.setOwner(thread: me)
    }

    /// A release with checks compiled out: the owner word refuses one by a thread that does not hold it.
    @inlinable @inline(__always)
    func _plainUnlock(endOfScope: Bool, call: StaticString, fileID: StaticString, line: UInt, function: StaticString) {
        let me = LockStorage<pthread_mutex_t>.currentThread
        let word = storage.ownerWord()
        if _fastPath(word == me) {
            storage.clearOwnerThread()
        } else if !storage.releaseSlowPath(me, word: word, endOfScope: endOfScope, call: call,
                                           site: LockdepSite(fileID: fileID, line: line, function: function)) {
            return
        }
        pthread_mutex_unlock(storage.primitivePointer)
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
        pthread_mutex_unlock(storage.primitivePointer)
    }

    /// `lock()` and its variants: refused (and counted) when this thread holds the mutex already.
    @inlinable @inline(__always)
    func _checkedLock(subclass: UInt8, nest: UnsafeRawPointer?, call: StaticString, site: LockdepSite) {
        let thread = Engine.fastThread()
        let word = storage.ownerWord()
        if _slowPath(storage.isOwned(by: thread, word: word)) {
            storage.refuseRecursiveAcquire(subclass: subclass, mode: .write, counted: true, call: call, site: site)
            return
        }
        _checkedLock(subclass: subclass, nest: nest, site: site, thread: thread, seenOwner: word)
    }

    /// `seenOwner`: the owner word the caller read for its recursion test, published with the
    /// wait instead of reading it again.
    @inlinable @inline(__always)
    func _checkedLock(subclass: UInt8, nest: UnsafeRawPointer?, site: LockdepSite,
                      thread: UnsafeMutablePointer<ThreadState>?, scoped: Bool = false, seenOwner: UInt? = nil) {
        // Subclass 0 (a constant at almost every call): the element and the outermost key, precomputed.
        let element = subclass == 0 ? storage.exclusiveSleepingElement : nil
        if let t = thread, nest == nil,
           Engine.fastPush(classID: storage.classID, subclass: subclass, instance: storage.instance, mode: .write,
                           flags: AcquireFlag.sleeping, site: site, t, elementWithoutIrq: element,
                           outermostKey: subclass == 0 ? storage.exclusiveSleepingOutermostKey : nil,
                           outermostValidatedWord: subclass == 0 ? storage.outermostValidatedWord : nil) {
            storage.lockPublishingWait(t, subclass: subclass, node: element.map { UInt32(truncatingIfNeeded: $0) },
                                       seenOwner: seenOwner) { pthread_mutex_lock($0) }
            storage.setOwner(scoped: scoped, t)
            return
        }
        _slowLock(subclass: subclass, nest: nest, site: site, scoped: scoped)
    }

    /// `_checkedLock` off its fast path: a chain not validated yet, a nest lock, statistics,
    /// validation off, the thread's first lock.
    @usableFromInline @inline(never)
    func _slowLock(subclass: UInt8, nest: UnsafeRawPointer?, site: LockdepSite, scoped: Bool) {
        let token = Engine.acquire(classID: storage.classID, subclass: subclass, instance: storage.instance,
                                   mode: .write, flags: AcquireFlag.sleeping, nest: nest, site: site)
        storage.lockMeasured(token, subclass: subclass, site: site) { pthread_mutex_trylock($0) }
            lock: { pthread_mutex_lock($0) }
        let thread = Engine.fastThread()
        storage.setOwner(token, scoped: scoped, thread: thread)
        if subclass == 0 && nest == nil { storage.noteOutermostValidated(thread) }
    }
    #endif
}
