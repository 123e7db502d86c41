import Foundation
import Synchronization
import XCTest
import TestSupport
@testable import Lockdep

/// Session 22's second adversarial pass, against the sixteen-misuse fix: legitimate rw semaphore
/// and spinning rwlock sequences around it, refusals with other threads, maps destroyed while
/// held, names holding text that looks like a template.
final class AdversarialSession22bTests: LockdepTestCase {
    override func tearDown() {
        Lockdep.limits = LockdepLimits()
        Lockdep.collectsStatistics = false
        super.tearDown()
    }

    private var allText: String { collector.reports.map(\.text).joined(separator: "\n") }

    /// A writer on another thread must get in (the semaphore is free).
    private func assertRWSemFree(_ s: CheckedRWSemaphore, _ msg: String) {
        let w = startThread(named: "adv22b-w") { s.writeLock(); s.writeUnlock() }
        let ok = w.join(timeout: 1)
        XCTAssertTrue(ok, msg)
        if !ok { switchValidationOff(); s.readUnlock(); s.writeUnlock(); _ = w.join(timeout: 2) }
    }

    // MARK: rwsem read-after-write by one thread, then both releases

    func testRWSemWriteThenReadThenBothReleases() {
        let s = CheckedRWSemaphore(class: .unique("adv22b.rwsem.wr"))
        s.writeLock()
        s.readLock()      // would deadlock: reported (with checks compiled in), not performed
        XCTAssertEqual(collector.reports.count, Lockdep.checksCompiledIn ? 1 : 0, allText)
        collector.clear()
        s.readUnlock()    // matches the refused read acquire
        s.writeUnlock()
        XCTAssertEqual(collector.kinds, [], "the releases after a reported down_read-after-down_write: \(allText)")
        // (`isHeld` is always true with checks compiled out; the writer below tests every build.)
        if Lockdep.checksCompiledIn { XCTAssertFalse(Lockdep.isHeld(s), "still held after both releases") }
        collector.clear()
        assertRWSemFree(s, "the write hold leaked")
    }

    // MARK: rwsem read twice

    func testRWSemReadTwiceThenBothReleases() {
        let s = CheckedRWSemaphore(class: .unique("adv22b.rwsem.rr"))
        s.readLock()
        s.readLock()
        collector.clear()
        s.readUnlock()
        s.readUnlock()
        XCTAssertEqual(collector.kinds, [], allText)
        if Lockdep.checksCompiledIn { XCTAssertFalse(Lockdep.isHeld(s)) }   // always held with checks compiled out
        assertRWSemFree(s, "a read hold leaked")
    }

    // MARK: rwsem write hold released after validation was switched off

    func testRWSemWriteHoldReleasedAfterValidationOff() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let s = CheckedRWSemaphore(class: .unique("adv22b.rwsem.off"))
        s.writeLock()
        switchValidationOff()
        s.writeUnlock()
        XCTAssertEqual(collector.kinds, [], allText)
        assertRWSemFree(s, "the write hold leaked after validation off")
    }

    // MARK: a map legitimately destroyed inside a held scope of another map

    func testMapDestroyedInsideAnotherMapsScopeIsSilent() {
        let outer = LockdepMap(class: .unique("adv22b.map.outer"))
        Lockdep.acquire(outer)
        do {
            let inner = LockdepMap(class: .dynamic("adv22b.map.inner"))
            Lockdep.acquire(inner)
            Lockdep.release(inner)
        }
        Lockdep.release(outer)
        XCTAssertEqual(collector.kinds, [], allText)
        XCTAssertEqual(Lockdep.heldLockCount, 0)
    }

    // MARK: placeholder in a held lock's name

    func testHeldClassNameContainingThePlaceholderIsPrintedVerbatim() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let name = "adv22b.\u{E000}LOCK\u{E000}.rcu"
        let map = LockdepMap(name, options: [.rcu])
        let m = CheckedMutex(class: .unique("adv22b.placeholder.m"))
        Lockdep.acquire(map, mode: .write)
        m.lock(); m.unlock()
        Lockdep.release(map)
        XCTAssertFalse(collector.reports.isEmpty, "no report for a lock inside an RCU map's exclusive hold")
        let text = allText
        XCTAssertFalse(text.contains("adv22b.(adv22b.placeholder.m).rcu"), "the held map's name was expanded: \(text)")
    }

    // MARK: rt mutex refusal, then another thread's unlock

    func testRTMutexRefusedThenOtherThreadUnlockThenHolderUnlocks() {
        let m = CheckedRTMutex(class: .unique("adv22b.rt.other"))
        m.lock()
        m.lock()   // refused
        collector.clear()
        onThread(named: "adv22b-rt-other") { m.unlock() }   // refused: not the holder
        // (Reported only with checks compiled in; every build refuses it.)
        XCTAssertEqual(collector.kinds, Lockdep.checksCompiledIn ? [.unlockFromOtherThread] : [], allText)
        collector.clear()
        m.unlock()   // matches the refused one
        XCTAssertTrue(Lockdep.isHeld(m))
        m.unlock()
        if Lockdep.checksCompiledIn { XCTAssertFalse(Lockdep.isHeld(m)) }   // always held with checks compiled out
        XCTAssertEqual(collector.kinds, [], allText)
        let t = startThread(named: "adv22b-rt-after") { m.lock(); m.unlock() }
        XCTAssertTrue(t.join(timeout: 1), "the rt mutex leaked")
    }

    // MARK: ww mutex: refused lock(ctx) leaves the context consistent

    func testWWRefusedLockUnderContextAfterBaseLockThenReleases() throws {
        let cls = WWClass("adv22b.ww.ctx")
        let m = WWMutex(cls)
        let ctx = WWAcquireContext(cls)
        m.baseLock()
        try m.lock(ctx)   // refused
        XCTAssertEqual(collector.kinds, [.recursiveLocking], allText)
        collector.clear()
        m.unlock()        // matches the refused one
        XCTAssertNil(m.context)
        m.baseUnlock()
        ctx.fini()
        XCTAssertEqual(collector.kinds, [], allText)
        let t = startThread(named: "adv22b-ww-after") { m.baseLock(); m.baseUnlock() }
        XCTAssertTrue(t.join(timeout: 1), "the ww mutex leaked")
    }

    // MARK: spin rwlock read after write by one thread

    func testSpinRWWriteThenReadThenBothReleases() {
        let l = CheckedSpinRWLock(class: .unique("adv22b.spinrw.wr"))
        l.writeLock()
        l.readLock()      // would deadlock: reported (with checks compiled in), not performed
        XCTAssertEqual(collector.reports.count, Lockdep.checksCompiledIn ? 1 : 0, allText)
        collector.clear()
        l.readUnlock()
        l.writeUnlock()
        XCTAssertEqual(collector.kinds, [], allText)
        if Lockdep.checksCompiledIn { XCTAssertFalse(Lockdep.isHeld(l)) }   // always held with checks compiled out
        let t = startThread(named: "adv22b-spinrw-after") { l.writeLock(); l.writeUnlock() }
        let ok = t.join(timeout: 1)
        XCTAssertTrue(ok, "the spin rwlock leaked")
        if !ok { switchValidationOff(); l.writeUnlock(); l.readUnlock(); _ = t.join(timeout: 2) }
    }

    // MARK: a map held twice (recursive read) destroyed by its holder

    func testMapHeldTwiceForRecursiveReadDestroyedDropsBothEntries() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        do {
            let map = LockdepMap(class: .dynamic("adv22b.map.twice"))
            Lockdep.acquire(map, mode: .recursiveRead)
            Lockdep.acquire(map, mode: .recursiveRead)
            XCTAssertEqual(collector.kinds, [], allText)
        }
        XCTAssertEqual(collector.kinds, [.heldLockDestroyed], allText)
        XCTAssertEqual(Lockdep.heldLockCount, 0, "a destroyed map's second entry stays on the held stack")
        collector.clear()
        let fresh = CheckedMutex(class: .dynamic("adv22b.map.twice.fresh"))
        fresh.lock(); fresh.unlock()
        XCTAssertEqual(collector.kinds, [], "a fresh class is reported against a destroyed map's entry: \(allText)")
    }
}
