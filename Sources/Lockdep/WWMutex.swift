internal import Glibc
internal import Synchronization

/// A class of wound/wait mutexes (the kernel's `DEFINE_WD_CLASS` / `DEFINE_WW_CLASS`): the
/// mutexes that one ``WWAcquireContext`` may take in any order, backing off on ``WWError/deadlock``.
///
/// Each class has two Lockdep classes: `<name>_acquire` for its contexts and `<name>_mutex` for
/// its mutexes. Every mutex taken under a context nests under the context, so many mutexes of
/// the class may be held at once without a recursive-locking report.
public final class WWClass: Sendable {
    /// How conflicts between two contexts are resolved.
    public enum Algorithm: Sendable {
        /// Wait-die: a younger context that finds a mutex held by an older one backs off at once.
        case waitDie
        /// Wound-wait: an older context that finds a mutex held by a younger one "wounds" it (the
        /// younger backs off at its next acquire) and waits.
        case woundWait
    }

    /// The class name.
    public let name: String
    /// The conflict-resolution algorithm.
    public let algorithm: Algorithm
    /// The Lockdep class of the acquire contexts.
    public let acquireClass: LockClass
    /// The Lockdep class of the mutexes.
    public let mutexClass: LockClass

    /// Creates a class.
    ///
    /// - Parameters:
    ///   - name: The name; the Lockdep classes are `<name>_acquire` and `<name>_mutex`.
    ///   - algorithm: Wait-die (default, `DEFINE_WD_CLASS`) or wound-wait (`DEFINE_WW_CLASS`).
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    public init(_ name: String, algorithm: Algorithm = .waitDie, fileID: StaticString = #fileID, line: UInt = #line) {
        self.name = name
        self.algorithm = algorithm
        let key = "\(name)#ww#\(fileID):\(line)#\(WWClass.serial.add(1, ordering: .relaxed).newValue)"
        acquireClass = LockClass("\(name)_acquire", key: key + "_acquire", fileID: fileID, line: line)
        mutexClass = LockClass("\(name)_mutex", key: key + "_mutex", fileID: fileID, line: line)
    }

    private static let serial = Atomic<Int>(0)
}

/// What ``WWMutex/lock(_:fileID:line:function:)`` throws.
public enum WWError: Error, Sendable, Equatable {
    /// `-EDEADLK`: the context must release every mutex it holds, then take this one with
    /// ``WWMutex/lockSlow(_:fileID:line:function:)`` before any other.
    case deadlock
    /// `-EALREADY`: the context already holds this mutex.
    case alreadyHeld
}

/// An acquire context of a ``WWClass`` (the kernel's `ww_acquire_ctx`): the ticket under which
/// one thread takes a set of ``WWMutex``es.
///
/// Creating it is `ww_acquire_init` (a Lockdep acquire of the class's context lock, so one thread
/// holding two contexts of a class is reported); ``done(fileID:line:function:)`` is
/// `ww_acquire_done` and ``fini(fileID:line:function:)`` is `ww_acquire_fini`. The API checks
/// of the kernel's `DEBUG_WW_MUTEXES` are reported as ``LockdepReport/Kind/assertionFailed``.
public final class WWAcquireContext: LockdepLock, @unchecked Sendable {
    /// The class.
    public let wwClass: WWClass
    /// The ticket: a smaller stamp is an older context, which wins conflicts.
    public let stamp: Int
    /// The number of mutexes the context holds.
    public internal(set) var acquired = 0
    /// Whether ``done(fileID:line:function:)`` was called.
    public private(set) var isDone = false
    var contending: WWMutex?
    let wounded = Atomic<Bool>(false)

    private static let stamps = Atomic<Int>(0)

    /// Begins an acquire sequence (`ww_acquire_init`).
    ///
    /// - Parameters:
    ///   - wwClass: The class of the mutexes the context will take.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public init(_ wwClass: WWClass, fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        self.wwClass = wwClass
        stamp = Self.stamps.add(1, ordering: .relaxed).newValue
        _ = KernelLockSupport.acquire(wwClass.acquireClass, subclass: 0, instance: lockdepInstance, mode: .write,
                                      sleeping: false, atomic: false,
                                      site: LockdepSite(fileID: fileID, line: line, function: function))
    }

    /// The Lockdep class of the context.
    public var lockClass: LockClass { wwClass.acquireClass }
    /// The identity of the context.
    public var lockdepInstance: UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) }

    /// Marks the end of the acquire phase (`ww_acquire_done`): taking another mutex under the
    /// context afterwards is reported, as is calling this twice.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func done(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        if isDone { KernelLockSupport.warn(self, "ww_acquire_done() called twice on one context", site: site) }
        isDone = true
    }

    /// Ends the context (`ww_acquire_fini`): every mutex taken under it must have been released.
    /// Ending it twice is reported as an unbalanced release.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func fini(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        _ = KernelLockSupport.release(wwClass.acquireClass, instance: lockdepInstance, ownerWord: 0, site: site)
        if acquired != 0 {
            KernelLockSupport.warn(self, "ww_acquire_fini() with \(acquired) mutex(es) still held under the context", site: site)
        }
    }
}

/// A wound/wait mutex (the kernel's `ww_mutex`): a sleeping mutex of a ``WWClass`` that a
/// ``WWAcquireContext`` takes together with others of its class in any order, deadlock-free:
/// a conflict between two contexts makes one of them back off with ``WWError/deadlock``.
///
/// Without a context it is a plain sleeping mutex of the class's mutex class (validated as
/// ``CheckedMutex`` is); the `base…` methods are the operations on the embedded mutex
/// (`ww_mutex.base`), which leave the context bookkeeping alone.
public final class WWMutex: LockdepLock, @unchecked Sendable {
    /// The class.
    public let wwClass: WWClass
    private let declared: LockdepSite
    private let state: UnsafeMutablePointer<pthread_mutex_t>
    private let freed: UnsafeMutablePointer<pthread_cond_t>
    private var holder: UInt = 0          // pthread_self of the holder, 0 when free
    private var holderWord: UInt = 0      // Lockdep owner word
    private var holderContext: WWAcquireContext?
    /// The holder's refused recursive acquires not yet matched by a release (each such release
    /// releases nothing). Under `state`.
    private var refusals = 0
    /// The context that took the mutex with ``lock(_:fileID:line:function:)`` (`ww_mutex.ctx`);
    /// `nil` when it is free or held without a context.
    public internal(set) var context: WWAcquireContext?

    /// Creates a mutex (`ww_mutex_init`).
    ///
    /// - Parameters:
    ///   - wwClass: Its class.
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    ///   - function: The declaration site (default `#function`).
    public init(_ wwClass: WWClass, fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        self.wwClass = wwClass
        declared = LockdepSite(fileID: fileID, line: line, function: function)
        state = .allocate(capacity: 1)
        freed = .allocate(capacity: 1)
        pthread_mutex_init(state, nil)
        pthread_cond_init(freed, nil)
    }

    deinit {
        if holderWord & 1 != 0 {
            KernelLockSupport.destroyedWhileHeld(lockClass, instance: lockdepInstance, ownerWord: holderWord, declared: declared)
        }
        pthread_cond_destroy(freed)
        pthread_mutex_destroy(state)
        freed.deallocate()
        state.deallocate()
    }

    /// The Lockdep class of the mutex.
    public var lockClass: LockClass { wwClass.mutexClass }
    /// The identity of the mutex.
    public var lockdepInstance: UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) }

    /// Acquires the mutex (`ww_mutex_lock`). With a context, the acquire nests under it and a
    /// conflict with another context may throw ``WWError/deadlock``; taking a mutex the context
    /// already holds throws ``WWError/alreadyHeld``. Without one it is a plain mutex acquire.
    /// Any other acquire by the thread that holds the mutex (it would wait for itself) is
    /// reported as recursive locking and refused, and the matching release releases nothing.
    ///
    /// - Parameters:
    ///   - ctx: The acquire context, or `nil`.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func lock(_ ctx: WWAcquireContext?, fileID: StaticString = #fileID, line: UInt = #line,
                     function: StaticString = #function) throws(WWError) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        if let ctx, context === ctx { throw .alreadyHeld }
        if refuseIfHeldByCaller(call: "WWMutex.lock(_:)", site: site) { return }
        let word = KernelLockSupport.acquire(lockClass, subclass: 0, instance: lockdepInstance, mode: .write, sleeping: true,
                                             atomic: false, nest: ctx?.lockdepInstance, site: site)
        if !take(ctx, word: word) {
            _ = KernelLockSupport.release(lockClass, instance: lockdepInstance, ownerWord: 0, site: site)
            if let ctx {
                if ctx.contending != nil {
                    KernelLockSupport.warn(self, "-EDEADLK again before the contended ww_mutex was taken", site: site)
                }
                ctx.contending = self
            }
            throw .deadlock
        }
        guard let ctx else { return }
        if context != nil {
            KernelLockSupport.warn(self, "ww_mutex still has a context: taken with a context, released without one", site: site)
        }
        if ctx.isDone { KernelLockSupport.warn(self, "ww_mutex taken after ww_acquire_done()", site: site) }
        if let contending = ctx.contending {
            if contending !== self {
                KernelLockSupport.warn(self, "after -EDEADLK, a different ww_mutex was taken than the contended one", site: site)
            }
            if ctx.acquired > 0 {
                KernelLockSupport.warn(self, "after -EDEADLK, ww_mutex taken without releasing every other first", site: site)
            }
            ctx.contending = nil
        }
        if ctx.wwClass !== wwClass {
            KernelLockSupport.warn(self, "ww_mutex of class \(wwClass.name) taken under a context of class \(ctx.wwClass.name)", site: site)
        }
        ctx.acquired += 1
        context = ctx
    }

    /// Takes the contended mutex after ``WWError/deadlock`` (`ww_mutex_lock_slow`): the context
    /// holds nothing, so this waits instead of backing off. Calling it without a preceding
    /// `deadlock` is reported.
    ///
    /// - Parameters:
    ///   - ctx: The acquire context.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func lockSlow(_ ctx: WWAcquireContext, fileID: StaticString = #fileID, line: UInt = #line,
                         function: StaticString = #function) {
        if ctx.contending == nil {
            KernelLockSupport.warn(self, "ww_mutex_lock_slow() without a preceding -EDEADLK",
                                   site: LockdepSite(fileID: fileID, line: line, function: function))
        }
        try? lock(ctx, fileID: fileID, line: line, function: function)
    }

    /// Tries to acquire the mutex without a context (`ww_mutex_trylock(lock, NULL)`).
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    /// - Returns: Whether the mutex was acquired.
    public func tryLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) -> Bool {
        baseTryLock(fileID: fileID, line: line, function: function)
    }

    /// Releases the mutex (`ww_mutex_unlock`), and its context's hold on it.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func unlock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        if consumeRefusal() { return }
        // Only the holder's release changes the context: another thread's is refused below.
        if isHeldByCaller, let ctx = context {
            if ctx.acquired == 0 {
                KernelLockSupport.warn(self, "ww_mutex released while its context holds nothing",
                                       site: site)
            } else {
                ctx.acquired -= 1
            }
            context = nil
        }
        release(site: site)
    }

    /// Acquires the embedded mutex (`mutex_lock(&ww.base)`), leaving ``context`` alone.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func baseLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        if refuseIfHeldByCaller(call: "WWMutex.baseLock()", site: site) { return }
        let word = KernelLockSupport.acquire(lockClass, subclass: 0, instance: lockdepInstance, mode: .write, sleeping: true,
                                             atomic: false, site: site)
        _ = take(nil, word: word)
    }

    /// Acquires the embedded mutex under a nest lock (`mutex_lock_nest_lock(&ww.base, ctx)`).
    ///
    /// - Parameters:
    ///   - outer: The nest lock, typically the acquire context.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func baseLock(nestedUnder outer: some LockdepLock, fileID: StaticString = #fileID, line: UInt = #line,
                         function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        if refuseIfHeldByCaller(call: "WWMutex.baseLock(nestedUnder:)", site: site) { return }
        let word = KernelLockSupport.acquire(lockClass, subclass: 0, instance: lockdepInstance, mode: .write, sleeping: true,
                                             atomic: false, nest: outer.lockdepInstance, site: site)
        _ = take(nil, word: word)
    }

    /// Tries to acquire the embedded mutex (`mutex_trylock(&ww.base)`).
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    /// - Returns: Whether the mutex was acquired.
    public func baseTryLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) -> Bool {
        pthread_mutex_lock(state)
        defer { pthread_mutex_unlock(state) }
        guard holder == 0 else { return false }
        holder = KernelLockSupport.currentThread
        holderWord = KernelLockSupport.acquire(lockClass, subclass: 0, instance: lockdepInstance, mode: .write,
                                               sleeping: false, atomic: false, trylock: true,
                                               site: LockdepSite(fileID: fileID, line: line, function: function))
        return true
    }

    /// Releases the embedded mutex (`mutex_unlock(&ww.base)`), leaving ``context`` alone.
    /// Releasing a mutex this thread does not hold is reported and not performed.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func baseUnlock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        if consumeRefusal() { return }
        release(site: site)
    }

    /// Whether the calling thread holds the mutex.
    private var isHeldByCaller: Bool {
        pthread_mutex_lock(state)
        defer { pthread_mutex_unlock(state) }
        return holder == KernelLockSupport.currentThread
    }

    /// An acquire by the thread that holds the mutex (it would wait for itself): reported as
    /// recursive locking and refused, whatever the context, and counted, so that the matching
    /// release releases nothing. Returns whether it refused.
    private func refuseIfHeldByCaller(call: StaticString, site: LockdepSite) -> Bool {
        pthread_mutex_lock(state)
        let mine = holder == KernelLockSupport.currentThread
        if mine { refusals += 1 }
        pthread_mutex_unlock(state)
        if mine { KernelLockSupport.refuseRecursive(self, subclass: 0, call: call, site: site) }
        return mine
    }

    /// A release by the holder that matches a refused acquire: consumes the refusal.
    private func consumeRefusal() -> Bool {
        pthread_mutex_lock(state)
        defer { pthread_mutex_unlock(state) }
        guard refusals > 0, holder == KernelLockSupport.currentThread else { return false }
        refusals -= 1
        return true
    }

    /// The release of the hold: validated (a thread that does not hold it is reported and
    /// refused), then the mutex is freed for its waiters.
    private func release(site: LockdepSite) {
        pthread_mutex_lock(state)
        let word = holderWord
        pthread_mutex_unlock(state)
        guard KernelLockSupport.release(lockClass, instance: lockdepInstance, ownerWord: word, site: site) else { return }
        pthread_mutex_lock(state)
        if holder == KernelLockSupport.currentThread {
            holder = 0
            holderWord &= ~1
            holderContext = nil
            pthread_cond_broadcast(freed)
        }
        pthread_mutex_unlock(state)
    }

    /// Takes the mutex for `ctx` (or without a context), applying wait-die or wound-wait.
    /// Returns `false` when `ctx` must back off (`-EDEADLK`).
    private func take(_ ctx: WWAcquireContext?, word: UInt) -> Bool {
        let me = KernelLockSupport.currentThread
        pthread_mutex_lock(state)
        defer { pthread_mutex_unlock(state) }
        while holder != 0 {
            if holder == me { return true }   // not reached: the callers refuse a holder's acquire first
            if let ctx, ctx.acquired > 0 {
                if ctx.wounded.load(ordering: .relaxed) { return false }
                if let other = holderContext {
                    switch wwClass.algorithm {
                    case .waitDie: if other.stamp < ctx.stamp { return false }
                    case .woundWait: if other.stamp > ctx.stamp { other.wounded.store(true, ordering: .relaxed) }
                    }
                }
            }
            pthread_cond_wait(freed, state)
        }
        holder = me
        holderWord = word
        holderContext = ctx
        if let ctx, ctx.acquired == 0 { ctx.wounded.store(false, ordering: .relaxed) }
        return true
    }
}
