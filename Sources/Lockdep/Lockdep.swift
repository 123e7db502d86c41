/// Lockdep: a lock-order, context and RCU-usage validator modelled on the Linux kernel's lockdep.
///
/// The `Lockdep` namespace holds the switches (report mode, limits, statistics), the scoped
/// context calls, the pseudo-lock operations the RCU module and work queues use, and the
/// assertions. The checked locks themselves are ``CheckedMutex``, ``CheckedRWLock``,
/// ``CheckedSpinLock`` and ``CheckedCondition``.
///
/// Checks are compiled in when the `LOCKDEP_CHECKS` condition is set: always in debug builds,
/// and in release builds built with the `LockdepInRelease` package trait
/// (`swift build -c release --traits LockdepInRelease`). Without it every call here is empty
/// and the checked locks are plain pthread locks.
public enum Lockdep {
    /// Whether the checks were compiled into this build (a constant the optimizer folds, so
    /// `if Lockdep.checksCompiledIn { ... }` costs nothing when they are not).
    @inlinable
    public static var checksCompiledIn: Bool {
        #if LOCKDEP_CHECKS
        true
        #else
        false
        #endif
    }

    /// Whether validation is currently running: compiled in and not switched off by a capacity
    /// report.
    public static var isValidating: Bool {
        #if LOCKDEP_CHECKS
        Engine.validating
        #else
        false
        #endif
    }

    /// What happens to reports: ``Lockdep/ReportHandler/trap`` (the default),
    /// ``Lockdep/ReportHandler/reportOnceAndContinue`` or a ``Lockdep/ReportHandler/custom(_:)`` handler.
    public static var reportHandler: Lockdep.ReportHandler {
        get { graph.withLock { $0.mode } }
        set {
            // The replaced handler is released after the lock: it may hold the last reference
            // to a lock whose deinit reports (a held lock freed), which takes this lock.
            let replaced = graph.withLock { g in
                let old = g.mode
                g.mode = newValue
                return old
            }
            _ = replaced
        }
    }

    /// The capacity limits. Changing them takes effect for every thread at its next lock operation.
    public static var limits: LockdepLimits {
        get { Engine.currentLimits() }
        set { Engine.setLimits(newValue) }
    }

    /// The validator's current size: live classes, dependencies and validated chains, the
    /// quantities ``limits`` bounds (the kernel's `/proc/lockdep_stats`).
    ///
    /// Freed dynamic classes (``LockClass/dynamic(_:validates:fileID:line:)``) no longer count,
    /// nor do their dependencies and chains, so an owner created and destroyed in a loop keeps
    /// these numbers flat.
    public static var graphSize: LockdepGraphSize {
        Engine.graphSize()
    }

    /// Forgets every class registration, dependency, chain, usage bit, statistic and reported
    /// key, re-enables validation after a capacity report, and clears the calling thread's held
    /// locks and context. Other threads keep their held locks: call it when none are held.
    ///
    /// - Note: Tests call this between cases and create fresh classes (``LockClass/unique(_:validates:fileID:line:)``)
    ///   so cases are independent.
    public static func resetForTesting() {
        Engine.resetAll()
    }

    /// The name the validator prints for the calling thread. Defaults to the pthread name, or
    /// `thread-N`.
    public static var currentThreadName: String {
        get { ThreadState.current().pointee.name }
        set {
            let t = ThreadState.current()
            t.pointee.name = newValue
            Engine.setThreadName(serial: t.pointee.serial, name: newValue)
        }
    }

    // MARK: contexts

    /// The calling thread's context.
    public static var currentContext: LockdepContext {
        #if LOCKDEP_CHECKS
        LockdepContext(rawValue: ThreadState.current().pointee.context) ?? .process
        #else
        .process
        #endif
    }

    /// Runs `body` in `context`: `.hardirq` for "ISR-like" code, `.softirq` for callbacks such as
    /// liburcu's call_rcu thread, `.process` to return to ordinary context.
    ///
    /// Sleeping (a mutex, rwlock or condition wait, `mightSleep()`) is invalid in `.hardirq` and
    /// `.softirq`; locks taken inside are marked "used in" that context for the inconsistent-state
    /// and inversion checks.
    ///
    /// - Parameters:
    ///   - context: The context to enter.
    ///   - body: The code to run.
    /// - Returns: What `body` returns.
    @inlinable
    public static func withContext<R, E: Error>(_ context: LockdepContext, _ body: () throws(E) -> R) throws(E) -> R {
        #if LOCKDEP_CHECKS
        // One thread-state lookup for the entry and the exit.
        let t = ThreadState.current()
        let saved = ThreadState.enterContext(context.rawValue, at: t)
        defer { ThreadState.exitContext(saved, at: t) }
        #endif
        return try body()
    }

    /// Runs `body` in `context`, saying whether a hardirq context is threaded.
    ///
    /// ``withContext(_:_:)`` enters a threaded hardirq context (the kernel's
    /// `lockdep_hardirq_threaded()`, as interrupt handlers run on PREEMPT_RT), where spinlocks
    /// may be taken. With `threaded: false` the hardirq context is a real one: only raw
    /// spinning locks (``CheckedSpinLock/init(_:class:raw:fileID:line:function:)`` with `raw: true`)
    /// may be taken inside; any other spinning lock is "BUG: Invalid wait context"
    /// (``LockdepReport/Kind/sleepInInvalidContext``), the kernel's
    /// `CONFIG_PROVE_RAW_LOCK_NESTING` check. `threaded` has no effect on the other contexts.
    ///
    /// - Parameters:
    ///   - context: The context to enter.
    ///   - threaded: Whether a hardirq context is threaded.
    ///   - body: The code to run.
    /// - Returns: What `body` returns.
    public static func withContext<R, E: Error>(_ context: LockdepContext, threaded: Bool,
                                                _ body: () throws(E) -> R) throws(E) -> R {
        #if LOCKDEP_CHECKS
        let t = ThreadState.current()
        let savedThreaded = t.pointee.hardirqNotThreaded
        t.pointee.hardirqNotThreaded = !threaded
        let saved = ThreadState.enterContext(context.rawValue, at: t)
        defer {
            t.pointee.hardirqNotThreaded = savedThreaded
            ThreadState.exitContext(saved, at: t)
        }
        #endif
        return try body()
    }

    /// The interrupt kinds that can be disabled.
    public enum Interrupts: Sendable {
        /// Hardware interrupts (`local_irq_disable()`).
        case hardirq
        /// Software interrupts (`local_bh_disable()`).
        case softirq
    }

    /// Runs `body` with the given interrupts "disabled": the userspace analogue of
    /// `spin_lock_irqsave` / `local_bh_disable`. Locks taken inside are not marked
    /// "taken with interrupts enabled", so they may also be used in that interrupt context.
    /// Sleeping inside is invalid.
    ///
    /// - Parameters:
    ///   - interrupts: Which interrupts to disable.
    ///   - body: The code to run.
    /// - Returns: What `body` returns.
    @inlinable
    public static func withInterruptsDisabled<R, E: Error>(_ interrupts: Interrupts = .hardirq,
                                                            _ body: () throws(E) -> R) throws(E) -> R {
        #if LOCKDEP_CHECKS
        _disableInterrupts(interrupts == .hardirq, by: 1)
        defer { _disableInterrupts(interrupts == .hardirq, by: -1) }
        #endif
        return try body()
    }

    /// ``enableInterrupts(_:fileID:line:)``: refused, and reported, when no disable is
    /// outstanding (the count would go below zero).
    @usableFromInline
    static func _enableInterrupts(_ hard: Bool, site: LockdepSite) {
        let t = ThreadState.current()
        if (hard ? t.pointee.hardirqOff : t.pointee.softirqOff) <= 0 {
            Engine.assertionFailure(
                t, lock: nil,
                message: "Lockdep.enableInterrupts(.\(hard ? "hardirq" : "softirq")) without a matching disableInterrupts()",
                site: site)
            return
        }
        t.pointee.countsChangedUnscoped = true
        _disableInterrupts(hard, by: -1)
    }

    /// ``disableInterrupts(_:)``.
    @usableFromInline
    static func _disableInterruptsUnscoped(_ hard: Bool) {
        ThreadState.current().pointee.countsChangedUnscoped = true
        _disableInterrupts(hard, by: 1)
    }

    @usableFromInline
    static func _disableInterrupts(_ hard: Bool, by delta: Int32) {
        let t = ThreadState.current()
        let before = t.pointee.irqState
        if hard { t.pointee.hardirqOff += delta } else { t.pointee.softirqOff += delta }
        t.pointee.updateIrq()
        // Interrupts enabled again with locks held: they are now held with interrupts on
        // (hardirqs; softirqs once both are on, as the kernel's lockdep_{hard,soft}irqs_on).
        if delta < 0 && t.pointee.depth > 0 {
            let after = t.pointee.irqState
            let hardOn = before & 4 != 0 && after & 4 == 0
            let softOn = after & 12 == 0 && before & 12 != 0
            if hardOn || softOn { Engine.interruptsEnabled(t, hard: hardOn, soft: softOn) }
        }
    }

    // MARK: pseudo-locks

    /// Acquires a pseudo-lock: validates the ordering against every lock the thread holds and
    /// pushes it on the thread's held-lock stack.
    ///
    /// - Parameters:
    ///   - map: The pseudo-lock.
    ///   - mode: `.recursiveRead` for RCU read sections, `.write` for work items and for the
    ///     empty write section of `synchronize`.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable
    public static func acquire(_ map: LockdepMap, mode: LockdepMode = .write, fileID: StaticString = #fileID,
                               line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _ = Engine.fastAcquire(classID: map.classID, subclass: 0, instance: map.lockdepInstance, mode: mode,
                               flags: map.flags, site: LockdepSite(fileID: fileID, line: line, function: function))
        #endif
    }

    /// Releases a pseudo-lock acquired with ``acquire(_:mode:fileID:line:function:)-(LockdepMap,_,_,_,_)``.
    ///
    /// Releasing a map that is not held is reported as ``LockdepReport/Kind/unlockNotHeld``.
    ///
    /// - Parameters:
    ///   - map: The pseudo-lock.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable
    public static func release(_ map: LockdepMap, fileID: StaticString = #fileID, line: UInt = #line,
                               function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _ = Engine.fastRelease(classID: map.classID, instance: map.lockdepInstance, ownerWord: 0,
                               site: LockdepSite(fileID: fileID, line: line, function: function))
        #endif
    }

    /// Runs `body` holding a pseudo-lock.
    ///
    /// - Parameters:
    ///   - map: The pseudo-lock.
    ///   - mode: The acquire mode.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    ///   - body: The code to run.
    /// - Returns: What `body` returns.
    @inlinable @inline(__always)
    public static func withAcquired<R, E: Error>(_ map: LockdepMap, mode: LockdepMode = .write,
                                                  fileID: StaticString = #fileID, line: UInt = #line,
                                                  function: StaticString = #function,
                                                  _ body: () throws(E) -> R) throws(E) -> R {
        acquire(map, mode: mode, fileID: fileID, line: line, function: function)
        defer { release(map, fileID: fileID, line: line, function: function) }
        return try body()
    }

    /// An empty write-side section: what `synchronize_rcu()`, `rcu_barrier()`, `cancelSync()` and
    /// `flush()` do to their maps. Waiting for every holder of `map` is modelled as acquiring it
    /// for write and releasing it at once.
    ///
    /// If `map` has the ``LockdepMap/Options/rcu`` option and the thread holds it for read, this
    /// reports ``LockdepReport/Kind/illegalSynchronize``; otherwise, when `sleeps` is true, an
    /// atomic context reports ``LockdepReport/Kind/sleepInInvalidContext``.
    ///
    /// - Parameters:
    ///   - map: The pseudo-lock waited for.
    ///   - sleeps: Whether the wait sleeps (default `true`).
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable
    public static func emptyWriteSection(_ map: LockdepMap, sleeps: Bool = true, fileID: StaticString = #fileID,
                                         line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _emptyWriteSection(map, sleeps: sleeps, site: LockdepSite(fileID: fileID, line: line, function: function))
        #endif
    }

    @usableFromInline
    static func _emptyWriteSection(_ map: LockdepMap, sleeps: Bool, site: LockdepSite) {
        let inOwnReadSection = map.options.contains(.rcu) && Engine.isHeld(map.lockdepInstance, mode: .read)
        if sleeps && !inOwnReadSection { Engine.mightSleep(site) }
        _ = Engine.acquire(classID: map.lockClass.id, subclass: 0, instance: map.lockdepInstance, mode: .write,
                           flags: map.flags, nest: nil, site: site)
        _ = Engine.release(classID: map.lockClass.id, instance: map.lockdepInstance, ownerWord: 0, site: site)
    }

    // MARK: queries and assertions

    /// Whether the calling thread holds `lock` (in any mode).
    ///
    /// - Parameter lock: A checked lock or map.
    /// - Returns: `true` if held; always `true` when checks are compiled out (assertions pass).
    public static func isHeld(_ lock: some LockdepLock) -> Bool {
        #if LOCKDEP_CHECKS
        Engine.isHeld(lock.lockdepInstance, mode: nil)
        #else
        true
        #endif
    }

    /// Whether the calling thread holds `lock` in `mode` (`.read` also matches recursive reads).
    ///
    /// - Parameters:
    ///   - lock: A checked lock or map.
    ///   - mode: `.write`, or `.read` / `.recursiveRead` for shared holds.
    /// - Returns: `true` if held that way; always `true` when checks are compiled out.
    public static func isHeld(_ lock: some LockdepLock, mode: LockdepMode) -> Bool {
        #if LOCKDEP_CHECKS
        Engine.isHeld(lock.lockdepInstance, mode: mode)
        #else
        true
        #endif
    }

    /// The number of locks and maps the calling thread holds (0 when checks are compiled out).
    public static var heldLockCount: Int {
        #if LOCKDEP_CHECKS
        ThreadState.current().pointee.depth
        #else
        0
        #endif
    }

    /// Reports ``LockdepReport/Kind/assertionFailed`` unless the thread holds `lock`
    /// (the kernel's `lockdep_assert_held`).
    ///
    /// - Parameters:
    ///   - lock: The lock that must be held.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public static func assertHeld(_ lock: some LockdepLock, fileID: StaticString = #fileID, line: UInt = #line,
                                  function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        if !Engine.isHeld(lock.lockdepInstance, mode: nil) {
            Engine.assertionFailure(ThreadState.current(), lock: lock, message: "lock (\(lock.lockClass.name)) is not held",
                                    site: LockdepSite(fileID: fileID, line: line, function: function))
        }
        #endif
    }

    /// Reports unless the thread holds `lock` in `mode` (`lockdep_assert_held_read` /
    /// `lockdep_assert_held_write`).
    ///
    /// - Parameters:
    ///   - lock: The lock that must be held.
    ///   - mode: `.write`, or `.read` for a shared hold.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public static func assertHeld(_ lock: some LockdepLock, _ mode: LockdepMode, fileID: StaticString = #fileID,
                                  line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        if !Engine.isHeld(lock.lockdepInstance, mode: mode) {
            let how = mode == .write ? "for write" : "for read"
            Engine.assertionFailure(ThreadState.current(), lock: lock,
                                    message: "lock (\(lock.lockClass.name)) is not held \(how)",
                                    site: LockdepSite(fileID: fileID, line: line, function: function))
        }
        #endif
    }

    /// Reports unless the thread does not hold `lock` (`lockdep_assert_not_held`).
    ///
    /// - Parameters:
    ///   - lock: The lock that must not be held.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public static func assertNotHeld(_ lock: some LockdepLock, fileID: StaticString = #fileID, line: UInt = #line,
                                     function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        if Engine.isHeld(lock.lockdepInstance, mode: nil) {
            Engine.assertionFailure(ThreadState.current(), lock: lock,
                                    message: "lock (\(lock.lockClass.name)) is held but must not be",
                                    site: LockdepSite(fileID: fileID, line: line, function: function))
        }
        #endif
    }

    /// Reports unless the thread holds no lock at all (`lockdep_assert_none_held_once`), for
    /// example before a blocking wait.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public static func assertNoneHeld(fileID: StaticString = #fileID, line: UInt = #line,
                                      function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        let t = ThreadState.current()
        if t.pointee.depth != 0 {
            Engine.assertionFailure(t, lock: nil, message: "\(t.pointee.depth) lock(s) held but none may be",
                                    site: LockdepSite(fileID: fileID, line: line, function: function))
        }
        #endif
    }

    /// Declares that the caller may sleep here (`might_sleep()`): reports
    /// ``LockdepReport/Kind/sleepInInvalidContext`` in hardirq/softirq context, with interrupts
    /// disabled, or while holding a spinlock or an atomic map.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable
    public static func mightSleep(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _mightSleep(LockdepSite(fileID: fileID, line: line, function: function))
        #endif
    }

    @usableFromInline
    static func _mightSleep(_ site: LockdepSite) { Engine.mightSleep(site) }

    /// Validates acquiring `lock` here without acquiring it (`might_lock()`): records the
    /// dependencies from every held lock and reports what a real acquire would.
    ///
    /// - Parameters:
    ///   - lock: The lock that might be taken.
    ///   - mode: The mode it might be taken in (default `.write`).
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public static func mightLock(_ lock: some LockdepLock, mode: LockdepMode = .write, fileID: StaticString = #fileID,
                                 line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        var flags: UInt8 = 0
        // The flags the lock's own acquire passes: a spinning lock's (spinlock, local lock,
        // spinning rwlock) never sleep.
        if let map = lock as? LockdepMap {
            flags = map.flags
        } else if !(lock is CheckedSpinLock || lock is LocalLock || lock is CheckedSpinRWLock) {
            flags = AcquireFlag.sleeping
        }
        _ = Engine.acquire(classID: lock.lockClass.id, subclass: 0, instance: lock.lockdepInstance, mode: mode,
                           flags: flags, nest: nil, site: site)
        _ = Engine.release(classID: lock.lockClass.id, instance: lock.lockdepInstance, ownerWord: 0, site: site)
        #endif
    }

    /// Pins a held lock (`lockdep_pin_lock`): releasing it before ``unpin(_:_:fileID:line:function:)``
    /// reports ``LockdepReport/Kind/pinnedLockReleased``.
    ///
    /// - Parameters:
    ///   - lock: A lock the thread holds.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    /// - Returns: A cookie to pass to `unpin`.
    @discardableResult
    public static func pin(_ lock: some LockdepLock, fileID: StaticString = #fileID, line: UInt = #line,
                           function: StaticString = #function) -> LockdepPinCookie {
        let cookie = LockdepPinCookie(instance: UInt(bitPattern: lock.lockdepInstance))
        #if LOCKDEP_CHECKS
        let t = ThreadState.current()
        if let i = Engine.heldIndex(t, lock.lockdepInstance) {
            t.pointee.held[i].pins &+= 1
        } else {
            Engine.assertionFailure(t, lock: lock, message: "pinning lock (\(lock.lockClass.name)) that is not held",
                                    site: LockdepSite(fileID: fileID, line: line, function: function))
        }
        #endif
        return cookie
    }

    /// Unpins a lock pinned with ``pin(_:fileID:line:function:)``.
    ///
    /// - Parameters:
    ///   - lock: The pinned lock.
    ///   - cookie: The cookie `pin` returned.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public static func unpin(_ lock: some LockdepLock, _ cookie: LockdepPinCookie, fileID: StaticString = #fileID,
                             line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        let t = ThreadState.current()
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        if cookie.instance != UInt(bitPattern: lock.lockdepInstance) {
            Engine.assertionFailure(t, lock: lock, message: "unpinning (\(lock.lockClass.name)) with a cookie of another lock", site: site)
        } else if let i = Engine.heldIndex(t, lock.lockdepInstance), t.pointee.held[i].pins > 0 {
            t.pointee.held[i].pins -= 1
        } else {
            Engine.assertionFailure(t, lock: lock, message: "unpinning lock (\(lock.lockClass.name)) that is not pinned", site: site)
        }
        #endif
    }

    /// The generic `rcu_dereference_check()` hook: reports
    /// ``LockdepReport/Kind/suspiciousDereference`` ("suspicious rcu_dereference_check() usage")
    /// unless `condition` is true or the thread holds at least one of `locks` (typically the RCU
    /// read map and the update-side lock).
    ///
    /// - Parameters:
    ///   - locks: The locks and maps any one of which makes the dereference legal.
    ///   - condition: An extra condition that makes it legal (the `c` of `rcu_dereference_check(p, c)`).
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public static func dereferenceCheck(_ locks: any LockdepLock..., condition: Bool = false,
                                        fileID: StaticString = #fileID, line: UInt = #line,
                                        function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        if condition || !Engine.validating { return }
        let t = ThreadState.current()
        if t.pointee.recursion != 0 { return }
        for lock in locks where Engine.heldIndex(t, lock.lockdepInstance) != nil { return }
        _reportDereference(t, names: locks.map { $0.lockClass.name },
                           site: LockdepSite(fileID: fileID, line: line, function: function))
        #endif
    }

    /// The allocation-free form of ``dereferenceCheck(_:condition:fileID:line:function:)`` for the
    /// common case of a read-section map plus at most one update-side lock.
    ///
    /// - Parameters:
    ///   - readSection: The read-section map (for example the RCU module's `rcu_read` map).
    ///   - lock: An update-side lock that also makes the dereference legal.
    ///   - condition: An extra condition that makes it legal.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable
    public static func dereferenceCheck(readSection: LockdepMap, orHeld lock: (some LockdepLock)? = nil as LockdepMap?,
                                        condition: Bool = false, fileID: StaticString = #fileID, line: UInt = #line,
                                        function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        if condition { return }
        _dereferenceCheck(readSection.lockdepInstance, lock?.lockdepInstance,
                          names: { [readSection.lockClass.name] + (lock.map { [$0.lockClass.name] } ?? []) },
                          site: LockdepSite(fileID: fileID, line: line, function: function))
        #endif
    }

    @usableFromInline
    static func _dereferenceCheck(_ first: UnsafeRawPointer, _ second: UnsafeRawPointer?, names: () -> [String],
                                  site: LockdepSite) {
        guard Engine.validating else { return }
        let t = ThreadState.current()
        if t.pointee.recursion != 0 || Engine.heldIndex(t, first) != nil { return }
        if let second, Engine.heldIndex(t, second) != nil { return }
        _reportDereference(t, names: names(), site: site)
    }

    static func _reportDereference(_ t: UnsafeMutablePointer<ThreadState>, names: [String], site: LockdepSite) {
        #if LOCKDEP_CHECKS
        var body = "\(site.fileName):\(site.line) suspicious rcu_dereference_check() usage!\n\n"
        body += "other info that might help us debug this:\n\n"
        body += "none of the required locks is held: " + names.map { "(\($0))" }.joined(separator: ", ") + "\n"
        body += "in \(site.function) on thread \"\(t.pointee.name)\"\n"
        let r = graph.withLock { g in
            Reports.make(.suspiciousDereference, "WARNING: suspicious RCU usage", t, site: site, lock: nil,
                         classes: names, held: Engine.heldLocks(g, t, upTo: t.pointee.depth), body: body)
        }
        Engine.deliver([r], t)
        #endif
    }
}

/// The size of Lockdep's graph (``Lockdep/graphSize``), against ``LockdepLimits``.
public struct LockdepGraphSize: Sendable, Equatable, CustomStringConvertible {
    /// Live lock classes registered since the last reset (bounded by ``LockdepLimits/maxClasses``).
    public var classes: Int
    /// Dependencies between classes (bounded by ``LockdepLimits/maxDependencies``).
    public var dependencies: Int
    /// Distinct validated lock chains (bounded by ``LockdepLimits/maxChains``).
    public var chains: Int

    /// Creates a value.
    ///
    /// - Parameters:
    ///   - classes: Live lock classes.
    ///   - dependencies: Dependencies between classes.
    ///   - chains: Validated lock chains.
    public init(classes: Int, dependencies: Int, chains: Int) {
        self.classes = classes
        self.dependencies = dependencies
        self.chains = chains
    }

    /// `classes: N, dependencies: N, chains: N`.
    public var description: String { "classes: \(classes), dependencies: \(dependencies), chains: \(chains)" }
}
