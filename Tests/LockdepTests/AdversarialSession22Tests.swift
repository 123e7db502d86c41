import Foundation
import Synchronization
import XCTest
@testable import Lockdep

/// Session 22's adversarial pass: combinations of two correct-looking calls through the public
/// API (validation off and on again around a misuse, the kernel-style primitives' wrong-side and
/// recursive releases, locks and classes freed while another thread holds them, ww mutexes).
final class AdversarialSession22Tests: LockdepTestCase {
    override func tearDown() {
        Lockdep.limits = LockdepLimits()
        Lockdep.collectsStatistics = false
        super.tearDown()
    }

    private var allText: String { collector.reports.map(\.text).joined(separator: "\n") }

    // MARK: 1. a release by a non-owner while validation is off

    /// "What every build catches": a release by a thread that does not hold the lock is
    /// reported and not performed, in every build. With checks compiled in but validation
    /// switched off by a capacity report, the release of a mutex another thread holds is
    /// forwarded to pthreads without a word: the holder loses its lock and a third party can
    /// take it.
    func testNonOwnerUnlockWhileValidationIsOffIsRefused() {
        let m = CheckedMutex(class: .unique("adv22.off.m"))
        // With checks compiled out there is no validation to switch off: the owner word alone
        // must refuse the release.
        if Lockdep.checksCompiledIn { switchValidationOff() }
        let holder = StepThread("adv22-off-holder")
        holder.run { m.lock() }
        m.unlock()   // this thread does not hold m
        XCTAssertEqual(collector.kinds, [.unlockFromOtherThread], "non-owner unlock not refused: \(allText)")
        holder.run { XCTAssertTrue(m.isHeldByCurrentThread, "the holder lost its lock to another thread's unlock") }
        // The primitive must still be locked: a third thread cannot take it.
        let stolen = m.tryLock()
        XCTAssertFalse(stolen, "the mutex was unlocked by a thread that did not hold it")
        if stolen { m.unlock() } else { holder.run { m.unlock() } }
        holder.finish()
    }

    // MARK: 2. an untracked hold on one thread, then its release of another thread's lock

    /// A thread takes a lock while validation is off (an "untracked hold"); validation comes
    /// back on (a reset from another thread); then the same thread releases a mutex that a
    /// *different* thread holds. The untracked-hold allowance ("a release Lockdep cannot find
    /// ends a hold taken while validation was off") must not override the owner word, which
    /// names another thread: the release must be reported and refused.
    func testUntrackedHoldDoesNotLicenseReleasingAnotherThreadsMutex() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let spin = CheckedSpinLock(class: .unique("adv22.untracked.spin"))
        let m = CheckedMutex(class: .unique("adv22.untracked.m"))
        let a = StepThread("adv22-untracked-a")
        switchValidationOff()
        a.run { spin.lock() }           // untracked: validation is off
        Lockdep.resetForTesting()        // validation back on (this thread holds nothing)
        XCTAssertTrue(Lockdep.isValidating)
        m.lock()                        // tracked hold by this thread
        a.run { m.unlock() }            // thread a does not hold m
        XCTAssertEqual(collector.kinds, [.unlockFromOtherThread], "release by a non-owner not refused: \(allText)")
        XCTAssertTrue(m.isHeldByCurrentThread, "this thread lost its mutex to another thread's unlock")
        XCTAssertTrue(Lockdep.isHeld(m))
        if m.isHeldByCurrentThread { m.unlock() }
        a.run { spin.unlock() }
        a.finish()
    }

    // MARK: 3. the wrong side of a CheckedRWSemaphore released

    /// `down_read` then `up_write` (the wrong side): the kernel's DEBUG_RWSEMS warns at the bad
    /// `up_write`. Here the write release pops the read hold from Lockdep's stack without a word
    /// (the semaphore stays read-locked in pthreads), so the correct `readUnlock()` that follows
    /// is reported as "bad unlock balance" and refused: the read hold leaks for ever and every
    /// later writer hangs.
    func testRWSemaphoreWriteUnlockOfAReadHold() {
        let s = CheckedRWSemaphore(class: .unique("adv22.rwsem.side.r"))
        s.readLock()
        s.writeUnlock()   // wrong side
        // (Reported only with checks compiled in; every build leaves the hold for the right release.)
        if Lockdep.checksCompiledIn { XCTAssertFalse(collector.reports.isEmpty, "writeUnlock() of a read hold was silent") }
        XCTAssertTrue(Lockdep.isHeld(s, mode: .read), "the read hold was dropped by a refused write release")
        collector.clear()
        s.readUnlock()    // the right release
        XCTAssertEqual(collector.kinds, [], "the matching readUnlock() was reported: \(allText)")
        // The read hold must be gone: a writer on another thread gets in.
        let writer = startThread(named: "adv22-rwsem-w") { s.writeLock(); s.writeUnlock() }
        let finished = writer.join(timeout: 1)
        XCTAssertTrue(finished, "the read hold leaked: a writer hangs")
        if !finished {
            // Free the leaked read hold (validation off forwards any release) so the writer ends.
            switchValidationOff()
            s.readUnlock()
            XCTAssertTrue(writer.join(timeout: 5))
        }
    }

    /// `down_write` then `up_read`: silent, and Lockdep forgets the write hold while the
    /// semaphore stays write-locked (assertions now fail, dependencies are missed).
    func testRWSemaphoreReadUnlockOfAWriteHold() {
        let s = CheckedRWSemaphore(class: .unique("adv22.rwsem.side.w"))
        s.writeLock()
        s.readUnlock()   // wrong side
        // (Reported only with checks compiled in; every build leaves the hold for the right release.)
        if Lockdep.checksCompiledIn { XCTAssertFalse(collector.reports.isEmpty, "readUnlock() of a write hold was silent") }
        XCTAssertTrue(Lockdep.isHeld(s, mode: .write), "Lockdep forgot a write hold the semaphore still has")
        collector.clear()
        s.writeUnlock()
        XCTAssertEqual(collector.kinds, [], allText)
    }

    /// The same wrong-side release on the spinning reader-writer lock (`read_lock` then
    /// `write_unlock`).
    func testSpinRWLockWriteUnlockOfAReadHold() {
        let l = CheckedSpinRWLock(class: .unique("adv22.spinrw.side"))
        l.readLock()
        l.writeUnlock()
        // (Reported only with checks compiled in; every build leaves the hold for the right release.)
        if Lockdep.checksCompiledIn { XCTAssertFalse(collector.reports.isEmpty, "writeUnlock() of a read hold was silent") }
        XCTAssertTrue(Lockdep.isHeld(l), "the read hold was dropped by a refused write release")
        collector.clear()
        l.readUnlock()
        XCTAssertEqual(collector.kinds, [], "the matching readUnlock() was reported: \(allText)")
        if !collector.kinds.isEmpty {
            // Free the leaked read hold so the lock can be destroyed.
            switchValidationOff()
            l.readUnlock()
        }
    }

    // MARK: 4. a refused recursive acquire whose matching release frees the real lock

    /// `down_write` twice on one thread: reported as recursive locking and refused ("would
    /// deadlock"). The matching (inner) `up_write` must release nothing, as for the checked
    /// mutex: here it unlocks the semaphore while the outer section still runs, and another
    /// thread's writer gets in.
    func testRWSemaphoreRefusedRecursiveWriteLockKeepsTheHold() {
        let s = CheckedRWSemaphore(class: .unique("adv22.rwsem.rec"))
        s.writeLock()
        s.writeLock()     // refused
        XCTAssertEqual(collector.kinds, [.recursiveLocking], allText)
        collector.clear()
        s.writeUnlock()   // matches the refused acquire
        let entered = Atomic<Bool>(false)
        let other = startThread(named: "adv22-rwsem-rec") {
            s.writeLock(); entered.store(true, ordering: .releasing); s.writeUnlock()
        }
        usleep(100_000)
        XCTAssertFalse(entered.load(ordering: .acquiring),
                       "another thread took the write side while the outer holder's section still runs")
        XCTAssertTrue(Lockdep.isHeld(s, mode: .write))
        s.writeUnlock()   // the outer release
        XCTAssertTrue(other.join(timeout: 2))
        XCTAssertEqual(collector.kinds, [], allText)
    }

    /// The same on the rt mutex.
    func testRTMutexRefusedRecursiveLockKeepsTheHold() {
        let m = CheckedRTMutex(class: .unique("adv22.rt.rec"))
        m.lock()
        m.lock()     // refused
        XCTAssertEqual(collector.kinds, [.recursiveLocking], allText)
        collector.clear()
        m.unlock()   // matches the refused acquire
        let entered = Atomic<Bool>(false)
        let other = startThread(named: "adv22-rt-rec") {
            m.lock(); entered.store(true, ordering: .releasing); m.unlock()
        }
        usleep(100_000)
        XCTAssertFalse(entered.load(ordering: .acquiring),
                       "another thread took the rt mutex while the outer holder's section still runs")
        m.unlock()
        XCTAssertTrue(other.join(timeout: 2))
        XCTAssertEqual(collector.kinds, [], allText)
    }

    // MARK: 5. a LocalLock destroyed while held

    /// A held local lock destroyed: every other checked lock reports "held lock freed!"; the
    /// local lock has no check at all, so its entry (and its atomic count) stays on the
    /// thread's stack for ever.
    func testLocalLockDestroyedWhileHeldIsReported() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        do {
            let l = LocalLock(class: .unique("adv22.local.freed"))
            l.lock()
        }
        XCTAssertEqual(collector.kinds, [.heldLockDestroyed], "a held LocalLock was destroyed silently: \(allText)")
        XCTAssertEqual(Lockdep.heldLockCount, 0, "the destroyed lock is still on the held stack")
        collector.clear()
        let m = CheckedMutex(class: .unique("adv22.local.after"))
        m.lock(); m.unlock()
        XCTAssertEqual(collector.kinds, [], "a later mutex acquire is reported against the destroyed lock: \(allText)")
    }

    /// The same with a dynamic class: the class is freed with the lock while its entry stays on
    /// the stack, and a new class that reuses its number is then named in a wrong report.
    func testLocalLockOfADynamicClassDestroyedWhileHeldCannotMisnameANewClass() {
        do {
            let l = LocalLock(class: .dynamic("adv22.local.dyn"))
            l.lock()
        }
        collector.clear()
        let fresh = LockClass.dynamic("adv22.local.fresh")
        let spin = CheckedSpinLock(class: fresh)
        spin.lock(); spin.unlock()
        XCTAssertEqual(collector.kinds, [], "a fresh class is reported against a destroyed lock: \(allText)")
    }

    // MARK: 6. a lock of a dynamic class destroyed while another thread holds it

    /// Thread h holds a mutex of a dynamic class; another thread destroys the mutex (reported:
    /// "held lock freed!") and with it the class. A new dynamic class then takes the freed
    /// number, and h takes a lock of that new class for the first time: that must not be
    /// "recursive locking" of the new class (h never held it).
    func testNewClassReusingTheNumberOfAClassFreedWhileHeldElsewhere() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        final class Box: @unchecked Sendable { var m: CheckedMutex? }
        let box = Box()
        box.m = CheckedMutex(class: .dynamic("adv22.victim"))
        let h = StepThread("adv22-victim-holder")
        h.run { box.m!.lock() }
        box.m = nil   // destroyed while h holds it
        XCTAssertEqual(collector.kinds, [.heldLockDestroyed], allText)
        collector.clear()
        let fresh = LockClass.dynamic("adv22.fresh")
        let n = CheckedMutex(class: fresh)
        h.run { n.lock(); n.unlock() }
        XCTAssertEqual(collector.kinds, [], "a lock never held is reported against a freed class's entry: \(allText)")
        // h never released the mutex it held when it was destroyed: it exits holding it.
        h.finish()
        XCTAssertEqual(collector.kinds, [.locksHeldAtThreadExit], allText)
    }

    // MARK: 7. ww mutexes

    /// A ww mutex taken with `baseLock()` and then with `lock(ctx)` by the same thread: the
    /// kernel deadlocks (or warns), and here it must at least be reported; it "succeeds"
    /// silently and the mutex counts as taken twice.
    func testWWMutexBaseLockedThenLockedUnderAContextByTheSameThread() throws {
        let cls = WWClass("adv22.ww")
        let m = WWMutex(cls)
        let ctx = WWAcquireContext(cls)
        m.baseLock()
        var threw: WWError?
        do { try m.lock(ctx) } catch { threw = error }
        XCTAssertFalse(collector.reports.isEmpty && threw == nil,
                       "taking a ww mutex the thread already holds was silent and \"succeeded\"")
        if threw == nil { m.unlock() }
        m.baseUnlock()
        ctx.fini()
    }

    /// `ww_mutex_lock(m, NULL)` twice: reported as recursive locking; the matching inner unlock
    /// must not release the mutex while the outer section still runs.
    func testWWMutexRecursiveLockWithoutAContextKeepsTheHold() throws {
        let cls = WWClass("adv22.ww.rec")
        let m = WWMutex(cls)
        try m.lock(nil)
        try m.lock(nil)
        XCTAssertEqual(collector.kinds, [.recursiveLocking], allText)
        collector.clear()
        m.unlock()
        let entered = Atomic<Bool>(false)
        let other = startThread(named: "adv22-ww-rec") {
            try? m.lock(nil); entered.store(true, ordering: .releasing); m.unlock()
        }
        usleep(100_000)
        XCTAssertFalse(entered.load(ordering: .acquiring),
                       "another thread took the ww mutex while the outer holder's section still runs")
        m.unlock()
        XCTAssertTrue(other.join(timeout: 2))
    }

    // MARK: 8. mightLock of spinning primitives

    /// `might_lock()` of a lock that never sleeps, with interrupts disabled or inside a spinlock,
    /// must not say the thread might sleep: only a sleeping lock would. `mightLock` treats every
    /// lock other than `CheckedSpinLock` as sleeping, so a `LocalLock` or a `CheckedSpinRWLock`
    /// (both spinning, both legal here, and their own `lock()` is silent here) is reported as
    /// "sleeping function called from invalid context".
    func testMightLockOfSpinningPrimitivesInAtomicContextIsSilent() {
        let local = LocalLock(class: .unique("adv22.might.local"))
        let spinRW = CheckedSpinRWLock(class: .unique("adv22.might.spinrw"))
        Lockdep.withInterruptsDisabled {
            local.lock(); local.unlock()
            spinRW.writeLock(); spinRW.writeUnlock()
        }
        XCTAssertEqual(collector.kinds, [], "the real acquires: \(allText)")
        Lockdep.withInterruptsDisabled {
            Lockdep.mightLock(local)
            Lockdep.mightLock(spinRW)
        }
        XCTAssertEqual(collector.kinds, [], "mightLock of a spinning lock reported as sleeping: \(allText)")
    }

    // MARK: 9. a pseudo-lock destroyed while held

    /// A held `LockdepMap` (a pseudo-lock of a dynamic class) destroyed: like the local lock, no
    /// "held lock freed!", and its stale entry then names a new class that reuses the number.
    func testLockdepMapOfADynamicClassDestroyedWhileHeld() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        do {
            let map = LockdepMap(class: .dynamic("adv22.map.dyn"))
            Lockdep.acquire(map)
        }
        XCTAssertEqual(collector.kinds, [.heldLockDestroyed], "a held map was destroyed silently: \(allText)")
        collector.clear()
        let fresh = CheckedMutex(class: .dynamic("adv22.map.fresh"))
        fresh.lock(); fresh.unlock()
        XCTAssertEqual(collector.kinds, [], "a fresh class is reported against a destroyed map: \(allText)")
    }

    // MARK: 10. report text built from names

    /// A class name is printed as given: a name that happens to contain the report template's
    /// placeholder `%LOCK%` must not be expanded into the report.
    func testClassNameContainingThePlaceholderIsPrintedVerbatim() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("adv22.%LOCK%.name"))
        Lockdep.assertHeld(m)
        let r = expectOne(.assertionFailed)
        XCTAssertTrue(r?.text.contains("lock (adv22.%LOCK%.name) is not held") ?? false, r?.text ?? "")
    }

    // MARK: 11. a refused ww_mutex_unlock that still changes the context

    /// A ww mutex taken under a context by thread a, released by another thread: reported and
    /// not performed, so it must change nothing. The context bookkeeping is changed first
    /// (`ctx.acquired` drops to 0, `m.context` becomes nil) while a still holds the mutex: a's
    /// `ww_acquire_fini` then passes with a mutex held, and a's second `lock(ctx)` of the mutex
    /// it holds is no longer `-EALREADY`.
    func testRefusedWWUnlockByAnotherThreadLeavesTheContextAlone() {
        final class Box: @unchecked Sendable { var ctx: WWAcquireContext? }
        let cls = WWClass("adv22.ww.other")
        let m = WWMutex(cls)
        let box = Box()
        let a = StepThread("adv22-ww-a")
        a.run {
            box.ctx = WWAcquireContext(cls)
            try! m.lock(box.ctx!)
        }
        m.unlock()   // this thread does not hold m
        // (Reported only with checks compiled in; every build refuses it.)
        XCTAssertEqual(collector.reports.count, Lockdep.checksCompiledIn ? 1 : 0, allText)
        collector.clear()
        XCTAssertTrue(m.context === box.ctx, "a refused unlock cleared the mutex's context")
        a.run {
            XCTAssertEqual(box.ctx!.acquired, 1, "a refused unlock changed the context's count")
            var again: WWError?
            do throws(WWError) { try m.lock(box.ctx!) } catch { again = error }
            XCTAssertEqual(again, .alreadyHeld, "a second lock(ctx) of a mutex the context holds")
            if again == nil { m.unlock() }
            m.unlock()
            box.ctx!.fini()
        }
        a.finish()
    }
}
