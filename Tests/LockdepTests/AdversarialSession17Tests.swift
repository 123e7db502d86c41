import Foundation
import XCTest
@testable import Lockdep

// The validated-chain shortcut exists only where Lockdep's checks are compiled in.
#if LOCKDEP_CHECKS

/// Adversarial tests of session 17's fast-path changes (42a3245, d1ec041, 91c94ef):
/// - a fast `CheckedMutex` acquire stores owner task 0 first and records the task out of line;
/// - a `CheckedMutex` release tests owner, refusals, entry and flags as one value;
/// - an outermost `lock()` of subclass 0 takes its key from the lock and, once any thread
///   validated that chain under the current state word, looks up no per-thread cache.
///
/// Every scenario first makes the mutex's outermost chain validated on one thread (so
/// `LockCell.outermostValidatedWord` is current) and then uses it on a thread whose own cache
/// never saw it: the shortcut is then what runs.
/// Whether the next outermost `lock()` of `m` on the calling thread takes the shortcut
/// (the word current, the thread's own cache never consulted).
private func shortcutArmed(_ m: CheckedMutex) -> Bool {
    let t = ThreadState.current()
    return m.storage.outermostValidatedWord == t.pointee.fastWord && t.pointee.fastWord == Engine.fastWord()
        && !t.pointee.cacheContains(m.storage.exclusiveSleepingOutermostKey)
}

final class AdversarialSession17Tests: LockdepTestCase {
    override func tearDown() {
        Lockdep.collectsStatistics = false
        super.tearDown()
    }

    private var allText: String { collector.reports.map(\.text).joined(separator: "\n") }

    /// Takes `m` outermost twice on the calling thread (the thread's state exists; the second
    /// acquire is a fast one) and asserts the lock now records the current word.
    private func validateOutermost(_ m: CheckedMutex, file: StaticString = #filePath, line: UInt = #line) {
        m.lock(); m.unlock()
        m.lock(); m.unlock()
        XCTAssertEqual(m.storage.outermostValidatedWord, ThreadState.current().pointee.fastWord,
                       "the outermost chain was not recorded as validated", file: file, line: line)
    }

    /// A thread that exists (its Lockdep state too) but never took `m`.
    private func freshThread(_ name: String) -> StepThread {
        let s = StepThread(name)
        let warm = CheckedMutex(class: .unique("adv17.warm.\(name)"))
        s.run { warm.lock(); warm.unlock(); warm.lock(); warm.unlock() }
        return s
    }

    // MARK: 1. owner task recorded after a fast acquire

    /// A task takes an outermost mutex by the fast path (the chain validated elsewhere, the
    /// executor's thread warm) and releases it on another executor after an await: reported as
    /// a hold across a suspension point and refused, as on the slow path.
    func testFastLockInTaskReleasedOnAnotherThreadIsHeldAcrossSuspension() async {
        let mutex = CheckedMutex(class: .unique("adv17.task.hop"))
        let first = ThreadExecutor("adv17-exec-a")
        let second = ThreadExecutor("adv17-exec-b")
        let warm = CheckedMutex(class: .unique("adv17.task.warm"))
        // Validated after every class this test registers: a registration that reuses a class
        // number freed since the last bump (by an earlier test's late deinit, say) bumps the
        // state word, and the shortcut wants the current word (once, under TSan, it was not).
        validateOutermost(mutex)
        let armed = Locked<[Bool]>([])
        await Task.detached {
            await withTaskExecutorPreference(first) { warm.lock(); warm.unlock(); warm.lock(); warm.unlock() }
            await withTaskExecutorPreference(second) { warm.lock(); warm.unlock(); warm.lock(); warm.unlock() }
            await withTaskExecutorPreference(first) {
                armed.withLock { $0.append(shortcutArmed(mutex)) }
                mutex.lock()
            }
            await withTaskExecutorPreference(second) { mutex.unlock() }
        }.value
        XCTAssertEqual(armed.withLock { $0 }, [true], "the scenario did not reach the outermost shortcut")
        let r = expectOne(.lockHeldAcrossSuspension)
        XCTAssertEqual(r?.otherThread, "adv17-exec-a")
        XCTAssertEqual(r?.thread, "adv17-exec-b")
        XCTAssertFalse(mutex.tryLock(), "the refused unlock released the mutex")
        await withTaskExecutorPreference(first) { mutex.unlock() }
        XCTAssertTrue(mutex.tryLock())
        mutex.unlock()
        first.stop(); second.stop()
    }

    /// A task takes the mutex by the fast path and suspends holding it; a second task on the
    /// same thread takes it (fast path armed as well): the first task's hold across a
    /// suspension point, not recursive locking. Repeated: the owner task must be recorded by
    /// every fast acquire, not only the first.
    func testFastLockSuspendedHoldRetakenByAnotherTaskOnTheSameThread() async {
        let mutex = CheckedMutex(class: .unique("adv17.task.same"))
        validateOutermost(mutex)
        let executor = ThreadExecutor("adv17-exec-x")
        let warm = CheckedMutex(class: .unique("adv17.task.same.warm"))
        await Task.detached {
            await withTaskExecutorPreference(executor) { warm.lock(); warm.unlock(); warm.lock(); warm.unlock() }
        }.value
        for round in 0..<5 {
            collector.clear()
            let resumeHolder = await retakeSuspendedHold(mutex, on: executor)
            XCTAssertEqual(collector.kinds, [.lockHeldAcrossSuspension], "round \(round): \(allText)")
            await resumeHolder()
            XCTAssertEqual(collector.kinds, [.lockHeldAcrossSuspension], "round \(round): \(allText)")
            XCTAssertTrue(mutex.tryLock(), "round \(round): the holder's own release did not go through")
            mutex.unlock()
        }
        executor.stop()
    }

    /// Outside any task a fast acquire records task 0: a thread that takes the mutex after a
    /// task held and released it, then releases it on the same thread, is silent; and a plain
    /// thread's unlock of a mutex a plain thread holds is "unlock from other thread", never
    /// "held across a suspension point".
    func testFastLockOutsideTasksRecordsNoTask() async {
        let mutex = CheckedMutex(class: .unique("adv17.task.none"))
        validateOutermost(mutex)
        await Task.detached { for _ in 0..<10 { mutex.lock(); mutex.unlock() } }.value
        let holder = freshThread("adv17-holder")
        let other = freshThread("adv17-other")
        holder.run { mutex.lock() }
        other.run { mutex.unlock() }
        XCTAssertEqual(collector.kinds, [.unlockFromOtherThread], allText)
        XCTAssertFalse(mutex.tryLock())
        holder.run { mutex.unlock() }
        XCTAssertTrue(mutex.tryLock())
        mutex.unlock()
        holder.finish(); other.finish()
    }

    // MARK: 2. the release's single test

    /// Every mismatch of the release's combined test must take the full path: a non-owner,
    /// an out-of-order release, a pinned lock, a refused nested acquire, a nest lock, a timed
    /// entry. Each after fast acquires.
    func testNonOwnerUnlockAfterFastLockIsRefused() {
        let m = CheckedMutex(class: .unique("adv17.rel.nonowner"))
        validateOutermost(m)
        let b = freshThread("adv17-nonowner")
        // b holds a lock of its own on top, so the top entry is a real one (not the sentinel).
        let own = CheckedMutex(class: .unique("adv17.rel.own"))
        b.run { own.lock(); own.unlock(); own.lock() }
        m.lock()
        b.run { m.unlock() }
        XCTAssertEqual(collector.kinds, [.unlockFromOtherThread], allText)
        XCTAssertTrue(Lockdep.isHeld(m))
        XCTAssertFalse(m.storage.ownerWord() == 0)
        m.unlock()
        b.run { XCTAssertEqual(Lockdep.heldLockCount, 1); own.unlock(); XCTAssertEqual(Lockdep.heldLockCount, 0) }
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        b.finish()
    }

    func testOutOfOrderUnlockAfterFastLocks() {
        let a = CheckedMutex(class: .unique("adv17.rel.ooo.a"))
        let b = CheckedMutex(class: .unique("adv17.rel.ooo.b"))
        let c = CheckedMutex(class: .unique("adv17.rel.ooo.c"))
        for _ in 0..<2 { a.lock(); b.lock(); c.lock(); c.unlock(); b.unlock(); a.unlock() }
        validateOutermost(a)
        collector.clear()
        a.lock(); b.lock(); c.lock()
        XCTAssertEqual(storedChainKeys(), eagerChainKeys())
        a.unlock()
        XCTAssertEqual(storedChainKeys(), eagerChainKeys())
        XCTAssertEqual(Lockdep.heldLockCount, 2)
        XCTAssertFalse(Lockdep.isHeld(a))
        c.unlock()
        XCTAssertEqual(storedChainKeys(), eagerChainKeys())
        b.unlock()
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        expectSilent()
        XCTAssertTrue(a.tryLock() && b.tryLock() && c.tryLock())
        c.unlock(); b.unlock(); a.unlock()
    }

    func testPinnedMutexReleaseAfterFastLockIsReported() {
        let m = CheckedMutex(class: .unique("adv17.rel.pin"))
        validateOutermost(m)
        for round in 0..<3 {
            collector.clear()
            m.lock()
            let cookie = Lockdep.pin(m)
            m.unlock()
            XCTAssertEqual(collector.kinds, [.pinnedLockReleased], "round \(round): \(allText)")
            Lockdep.unpin(m, cookie)
            XCTAssertEqual(Lockdep.heldLockCount, 0)
        }
    }

    func testRefusedNestedLockAfterFastLockKeepsTheHold() {
        let m = CheckedMutex(class: .unique("adv17.rel.refused"))
        validateOutermost(m)
        for round in 0..<3 {
            collector.clear()
            m.lock()
            m.lock()                     // refused: recursive locking
            XCTAssertEqual(collector.kinds, [.recursiveLocking], "round \(round): \(allText)")
            m.unlock()                   // matches the refused acquire: releases nothing
            XCTAssertTrue(Lockdep.isHeld(m), "round \(round): the refused acquire's unlock released the mutex")
            XCTAssertEqual(Lockdep.heldLockCount, 1)
            m.unlock()
            XCTAssertEqual(Lockdep.heldLockCount, 0)
            XCTAssertEqual(collector.kinds, [.recursiveLocking], "round \(round): \(allText)")
            XCTAssertTrue(m.tryLock(), "round \(round)")
            m.unlock()
        }
    }

    func testNestedUnderAndSubclassReleasesAfterTheShortcut() {
        let outer = CheckedMutex(class: .unique("adv17.rel.outer"))
        let m = CheckedMutex(class: .unique("adv17.rel.nested"))
        validateOutermost(m)
        validateOutermost(outer)
        let b = freshThread("adv17-nest")
        b.run {
            XCTAssertTrue(shortcutArmed(m))
            for _ in 0..<3 {
                m.lock()                                   // the shortcut
                XCTAssertEqual(storedChainKeys(), eagerChainKeys())
                XCTAssertEqual(storedChainKeys().first, m.storage.exclusiveSleepingOutermostKey)
                m.unlock()
                m.lock(subclass: 1)
                XCTAssertEqual(storedChainKeys(), eagerChainKeys())
                XCTAssertNotEqual(storedChainKeys().first, m.storage.exclusiveSleepingOutermostKey)
                m.unlock()
                outer.lock()
                m.lock(nestedUnder: outer)
                XCTAssertEqual(storedChainKeys(), eagerChainKeys())
                m.unlock()
                outer.unlock()
                XCTAssertEqual(Lockdep.heldLockCount, 0)
            }
        }
        b.finish()
        expectSilent()
        XCTAssertTrue(m.tryLock()); m.unlock()
        XCTAssertTrue(outer.tryLock()); outer.unlock()
    }

    /// An acquire timed for statistics, released after statistics were switched off (the
    /// release's fast pop must see the timed entry): its hold is recorded.
    func testTimedEntryReleasedAfterStatisticsOff() {
        let m = CheckedMutex(class: .unique("adv17.rel.timed"))
        validateOutermost(m)
        Lockdep.collectsStatistics = true
        m.lock()
        Lockdep.collectsStatistics = false
        usleep(2_000)
        m.unlock()
        let row = Lockdep.statistics().first { $0.name == "adv17.rel.timed" }
        XCTAssertEqual(row?.acquisitions, 1)
        XCTAssertEqual(row?.holds, 1, "the timed hold was popped by the fast path and not recorded")
        XCTAssertGreaterThanOrEqual(row?.holdMax ?? .zero, .milliseconds(1))
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        expectSilent()
    }

    // MARK: 4. the outermost shortcut

    /// Sleeping contexts on a thread armed for the shortcut: each must be reported every
    /// time (the shortcut sits behind the atomic-word test).
    func testAtomicContextsOnAnArmedThreadReportSleeping() {
        let m = CheckedMutex(class: .unique("adv17.ctx.m"))
        let spin = CheckedSpinLock(class: .unique("adv17.ctx.spin"))
        validateOutermost(m)
        let results = Locked<[String]>([])
        onThread(named: "adv17-ctx") { [collector] in
            let warm = CheckedMutex(class: .unique("adv17.ctx.warm"))
            warm.lock(); warm.unlock(); warm.lock(); warm.unlock()
            let contexts: [(String, (() -> Void) -> Void)] = [
                ("spinlock", { body in spin.lock(); body(); spin.unlock() }),
                ("hardirq", { body in Lockdep.withContext(.hardirq) { body() } }),
                ("softirq", { body in Lockdep.withContext(.softirq) { body() } }),
                ("hardirqs off", { body in Lockdep.withInterruptsDisabled(.hardirq) { body() } }),
                ("softirqs off", { body in Lockdep.withInterruptsDisabled(.softirq) { body() } }),
                ("unscoped hardirqs off", { body in Lockdep.disableInterrupts(.hardirq); body(); Lockdep.enableInterrupts(.hardirq) }),
                ("unscoped softirqs off", { body in Lockdep.disableInterrupts(.softirq); body(); Lockdep.enableInterrupts(.softirq) }),
            ]
            for (name, inContext) in contexts {
                for attempt in 1...3 {
                    let armed = shortcutArmed(m)
                    collector.clear()
                    inContext { m.lock(); m.unlock() }
                    let kinds = collector.kinds
                    if !kinds.contains(.sleepInInvalidContext) || !armed && attempt > 1 {
                        results.withLock { $0.append("\(name) attempt \(attempt) (armed \(armed)): \(kinds)") }
                    }
                    // Back in process context: silent, through the shortcut.
                    collector.clear()
                    m.lock(); XCTAssertEqual(storedChainKeys(), eagerChainKeys()); m.unlock()
                    if !collector.reports.isEmpty {
                        results.withLock { $0.append("\(name) afterwards: \(collector.kinds)") }
                    }
                }
            }
            if Lockdep.heldLockCount != 0 { results.withLock { $0.append("left held") } }
        }
        XCTAssertEqual(results.withLock { $0 }, [])
    }

    /// The mutex taken outermost (process context, softirqs on: softirq-unsafe) on one
    /// thread, its shortcut used on another, and a softirq-safe spinlock taken around it on a
    /// third: an irq lock inversion (safe -> unsafe), besides sleeping with softirqs off.
    func testIrqInversionAgainstAMutexTakenByTheShortcut() {
        let m = CheckedMutex(class: .unique("adv17.inv.m"))
        let l = CheckedSpinLock(class: .unique("adv17.inv.l"))
        validateOutermost(m)
        let b = freshThread("adv17-inv-b")
        b.run { XCTAssertTrue(shortcutArmed(m)); m.lock(); m.unlock() }
        onThread(named: "adv17-inv-irq") { Lockdep.withContext(.softirq) { l.lock(); l.unlock() } }
        XCTAssertEqual(collector.kinds, [])
        b.run { Lockdep.withInterruptsDisabled(.softirq) { l.lock(); m.lock(); m.unlock(); l.unlock() } }
        let kinds = collector.kinds
        XCTAssertTrue(kinds.contains(.sleepInInvalidContext), "\(kinds): \(allText)")
        XCTAssertTrue(kinds.contains(.irqLockInversion) || kinds.contains(.inconsistentLockState),
                      "no irq inversion reported for softirq-safe -> softirq-unsafe: \(kinds)\n\(allText)")
        b.finish()
    }

    /// The other order: the dependency l -> m first (m under a softirq-safe lock), then m
    /// taken outermost with softirqs on, first on one thread, then by the shortcut on others:
    /// the first outermost acquire makes m softirq-unsafe under an existing safe -> m edge,
    /// and exactly the one report must come, not lost and not repeated by shortcut acquires.
    func testIrqInversionWhenTheOutermostAcquireComesLast() {
        let m = CheckedMutex(class: .unique("adv17.inv2.m"))
        let l = CheckedSpinLock(class: .unique("adv17.inv2.l"))
        onThread(named: "adv17-inv2-irq") { Lockdep.withContext(.softirq) { l.lock(); l.unlock() } }
        Lockdep.withInterruptsDisabled(.softirq) { l.lock(); m.lock(); m.unlock(); l.unlock() }
        XCTAssertEqual(collector.kinds, [.sleepInInvalidContext], allText)
        collector.clear()
        onThread(named: "adv17-inv2-a") { m.lock(); m.unlock(); m.lock(); m.unlock() }
        let first = collector.kinds
        XCTAssertTrue(first.contains(.irqLockInversion) || first.contains(.inconsistentLockState),
                      "taking the mutex with softirqs on after l -> m: \(first)\n\(allText)")
    }

    /// Reset, limits, statistics and validation switched while a lock's shortcut is armed
    /// on another thread: the next acquire there must see each change.
    func testResetForgetsTheOutermostChainForOtherThreads() {
        let m = CheckedMutex(class: .unique("adv17.reset.m"))
        let n = CheckedMutex(class: .unique("adv17.reset.n"))
        validateOutermost(m)
        let b = freshThread("adv17-reset-b")
        b.run { XCTAssertTrue(shortcutArmed(m)) }
        Lockdep.resetForTesting()
        XCTAssertEqual(Lockdep.graphSize.chains, 0)
        b.run {
            XCTAssertFalse(shortcutArmed(m), "a reset left the shortcut armed")
            m.lock(); m.unlock()
        }
        XCTAssertEqual(Lockdep.graphSize.chains, 1, "the outermost chain was not validated again after the reset")
        // The order the graph lost with the reset is learned again and checked.
        b.run { m.lock(); n.lock(); n.unlock(); m.unlock() }
        onThread(named: "adv17-reset-c") { n.lock(); m.lock(); m.unlock(); n.unlock() }
        XCTAssertEqual(collector.kinds, [.circularDependency], allText)
        b.finish()
    }

    func testLoweredDepthLimitStopsTheShortcut() {
        let m = CheckedMutex(class: .unique("adv17.limit.m"))
        validateOutermost(m)
        let b = freshThread("adv17-limit-b")
        var limits = LockdepLimits()
        limits.maxDepth = 0
        Lockdep.limits = limits
        b.run { m.lock(); m.unlock() }
        XCTAssertEqual(collector.kinds, [.capacityExceeded], allText)
        Lockdep.limits = LockdepLimits()
        b.finish()
    }

    func testStatisticsToggledWhileArmed() {
        let m = CheckedMutex(class: .unique("adv17.stats.m"))
        let n = CheckedMutex(class: .unique("adv17.stats.n"))
        validateOutermost(m)
        let b = freshThread("adv17-stats-b")
        Lockdep.collectsStatistics = true
        b.run { for _ in 0..<3 { m.lock(); m.unlock() } }
        let row = Lockdep.statistics().first { $0.name == "adv17.stats.m" }
        XCTAssertEqual(row?.acquisitions, 3, "acquires with statistics on were not counted")
        Lockdep.collectsStatistics = false
        b.run {
            // b's full acquires with statistics on cached the chain: the word is what matters.
            XCTAssertEqual(m.storage.outermostValidatedWord, Engine.fastWord())
            m.lock(); n.lock()
            XCTAssertEqual(storedChainKeys(), eagerChainKeys())
            n.unlock(); m.unlock()
        }
        onThread(named: "adv17-stats-c") { n.lock(); m.lock(); m.unlock(); n.unlock() }
        XCTAssertEqual(collector.kinds, [.circularDependency], allText)
        b.finish()
    }

    /// Validation off (by a capacity report), then back on by a reset: while off, nothing is
    /// reported and nothing is left held; after the reset, the shortcut is not armed by the
    /// word the lock remembers from before, and orders are checked again.
    func testValidationOffAndOnAgainWhileArmed() {
        let m = CheckedMutex(class: .unique("adv17.off.m"))
        let n = CheckedMutex(class: .unique("adv17.off.n"))
        validateOutermost(m)
        m.lock(); n.lock(); n.unlock(); m.unlock()
        let b = freshThread("adv17-off-b")
        var limits = LockdepLimits()
        limits.maxDepth = 2
        Lockdep.limits = limits
        let spins = (0..<3).map { CheckedSpinLock(class: .unique("adv17.off.spin\($0)")) }
        for s in spins { s.lock() }
        for s in spins.reversed() { s.unlock() }
        Lockdep.limits = LockdepLimits()
        XCTAssertFalse(Lockdep.isValidating)
        collector.clear()
        b.run { n.lock(); m.lock(); m.unlock(); n.unlock(); m.lock(); m.unlock() }
        XCTAssertEqual(collector.kinds, [], allText)
        Lockdep.resetForTesting()
        XCTAssertTrue(Lockdep.isValidating)
        b.run {
            XCTAssertFalse(shortcutArmed(m))
            m.lock(); n.lock(); n.unlock(); m.unlock()
        }
        onThread(named: "adv17-off-c") { n.lock(); m.lock(); m.unlock(); n.unlock() }
        XCTAssertEqual(collector.kinds, [.circularDependency], allText)
        b.finish()
    }

    /// Many mutexes of one class: the chain is the class's, each lock's word its own; every
    /// lock's first shortcut-free acquire on a fresh thread finds the chain in the graph (no
    /// new chain), stored keys are the engine's, and an order against the class is caught.
    func testManyMutexesOfOneClass() {
        let cls = LockClass("adv17.shared.class")
        let mutexes = (0..<40).map { _ in CheckedMutex(class: cls) }
        let other = CheckedMutex(class: .unique("adv17.shared.other"))
        validateOutermost(mutexes[0])
        let chains = Lockdep.graphSize.chains
        onThread(named: "adv17-shared") {
            for m in mutexes {
                for _ in 0..<2 {
                    m.lock()
                    XCTAssertEqual(storedChainKeys(), eagerChainKeys())
                    XCTAssertEqual(storedChainKeys(), [mutexes[0].storage.exclusiveSleepingOutermostKey])
                    m.unlock()
                }
            }
        }
        XCTAssertEqual(Lockdep.graphSize.chains, chains)
        onThread(named: "adv17-shared-b") { mutexes[7].lock(); other.lock(); other.unlock(); mutexes[7].unlock() }
        onThread(named: "adv17-shared-c") { other.lock(); mutexes[31].lock(); mutexes[31].unlock(); other.unlock() }
        XCTAssertEqual(collector.kinds, [.circularDependency], allText)
    }

    /// Dynamic classes freed and their numbers reused while threads keep their state: a new
    /// mutex whose class got a freed number must not inherit the old one's chains or edges.
    func testDestroyedAndRecreatedMutexesReuseClassNumbers() {
        let x = CheckedMutex(class: .unique("adv17.dyn.x"))
        let b = freshThread("adv17-dyn-b")
        var ids: [UInt32] = []
        for round in 0..<12 {
            collector.clear()
            do {
                let m = CheckedMutex(class: .dynamic("adv17.dyn.m\(round)"))
                ids.append(m.storage.classID)
                validateOutermost(m)
                b.run {
                    m.lock(); x.lock()
                    XCTAssertEqual(storedChainKeys(), eagerChainKeys())
                    x.unlock(); m.unlock()
                }
            }
            // m is gone, its class freed: the reverse order against a new class is no cycle.
            do {
                let m2 = CheckedMutex(class: .dynamic("adv17.dyn.r\(round)"))
                b.run {
                    x.lock(); m2.lock()
                    XCTAssertEqual(storedChainKeys(), eagerChainKeys())
                    m2.unlock(); x.unlock()
                    m2.lock(); m2.unlock(); m2.lock(); m2.unlock()
                }
                m2.lock(); m2.unlock()
            }
            XCTAssertEqual(collector.kinds, [], "round \(round): \(allText)")
        }
        XCTAssertLessThan(Set(ids).count, ids.count, "no class number was ever reused: the test proves nothing")
        b.finish()
    }

    /// Threads hammer the shortcut while the main thread resets and changes limits; afterwards
    /// a known order violation is still caught on those threads.
    func testShortcutUnderConcurrentResetsAndLimitChanges() {
        let m = CheckedMutex(class: .unique("adv17.race.m"))
        let n = CheckedMutex(class: .unique("adv17.race.n"))
        let stop = Locked(false)
        let bad = Locked<[String]>([])
        let threads = (0..<3).map { i in
            TestThread(named: "adv17-race-\(i)") {
                while !stop.withLock({ $0 }) {
                    for _ in 0..<50 {
                        m.lock()
                        if storedChainKeys() != eagerChainKeys() { bad.withLock { $0.append("keys \(i)") } }
                        n.lock(); n.unlock()
                        m.unlock()
                    }
                }
            }
        }
        for round in 0..<60 {
            if round % 3 == 0 { Lockdep.resetForTesting() }
            else if round % 3 == 1 { var l = LockdepLimits(); l.maxDepth = 40 + round; Lockdep.limits = l }
            else { Lockdep.collectsStatistics.toggle() }
            usleep(1_000)
        }
        stop.withLock { $0 = true }
        for t in threads { t.wait() }
        Lockdep.collectsStatistics = false
        Lockdep.limits = LockdepLimits()
        XCTAssertEqual(bad.withLock { $0 }, [])
        // Reports during the race (none expected: one order only).
        XCTAssertEqual(collector.kinds, [], allText)
        Lockdep.resetForTesting()
        onThread(named: "adv17-race-a") { m.lock(); m.unlock(); m.lock(); n.lock(); n.unlock(); m.unlock() }
        onThread(named: "adv17-race-b") { n.lock(); m.lock(); m.unlock(); n.unlock() }
        XCTAssertEqual(collector.kinds, [.circularDependency], allText)
    }

    /// fork() with the shortcut armed: the child's acquires use it and still check orders
    /// the parent recorded.
    func testForkWithTheShortcutArmed() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        let m = CheckedMutex(class: .unique("adv17.fork.m"))
        let n = CheckedMutex(class: .unique("adv17.fork.n"))
        validateOutermost(m)
        m.lock(); n.lock(); n.unlock(); m.unlock()
        let clean = childExitsCleanly {
            let seen = Locked<[LockdepReport.Kind]>([])
            Lockdep.reportHandler = .custom { r in seen.withLock { $0.append(r.kind) } }
            guard shortcutArmed(m) || m.storage.outermostValidatedWord == ThreadState.current().pointee.fastWord
            else { return false }
            m.lock()
            guard storedChainKeys() == eagerChainKeys() else { return false }
            m.unlock()
            n.lock(); m.lock(); m.unlock(); n.unlock()
            return seen.withLock { $0 } == [.circularDependency]
        }
        XCTAssertTrue(clean, "the child did not report the reverse order (or failed)")
    }
}
#endif
