import Foundation
import XCTest
@testable import Lockdep

/// Misuse and capacity limits: each gets one clear report naming the lock and the site.
final class MisuseTests: LockdepTestCase {
    func testUnlockOfNeverLockedRWLockIsNotForwarded() throws {
        let rw = CheckedRWLock(class: .unique("table"))
        rw.unlock()
        let r = try XCTUnwrap(expectOne(.unlockNotHeld))
        XCTAssertEqual(r.lock?.name, "table")
        // The lock still works normally afterwards.
        collector.clear()
        rw.withWriteLock {}
        rw.withReadLock { rw.withReadLock {} }
        expectSilent()
    }

    func testReleaseOfMapNotHeld() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let map = LockdepMap(class: .unique("completion"))
        let line: UInt = #line + 1
        Lockdep.release(map)
        let r = try XCTUnwrap(expectOne(.unlockNotHeld))
        XCTAssertEqual(r.site?.line, line)
        XCTAssertEqual(r.classes, ["completion"])
    }

    func testOutOfOrderReleaseRevalidates() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let a = CheckedMutex(class: .unique("A")), b = CheckedMutex(class: .unique("B")), c = CheckedMutex(class: .unique("C"))
        a.lock(); b.lock(); c.lock()
        b.unlock()                      // leaves [A, C]
        XCTAssertTrue(Lockdep.isHeld(a)); XCTAssertFalse(Lockdep.isHeld(b)); XCTAssertTrue(Lockdep.isHeld(c))
        c.unlock(); a.unlock()
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        expectSilent()
    }

    func testClassLimit() throws {
        var limits = LockdepLimits()
        limits.maxClasses = 5
        Lockdep.limits = limits
        Lockdep.resetForTesting()
        collector.install()
        for i in 0..<5 { _ = LockClass.unique("ok\(i)") }
        expectSilent()
        let line: UInt = #line + 1
        _ = LockClass.unique("one-too-many")
        let r = try XCTUnwrap(expectOne(.capacityExceeded))
        XCTAssertEqual(r.title, "BUG: MAX_LOCKDEP_KEYS too low!")
        XCTAssertTrue(r.text.contains("(one-too-many), at: LockClass.init MisuseTests.swift:\(line)"), r.text)
        XCTAssertEqual(r.site?.line, line)
        XCTAssertFalse(Lockdep.isValidating)
        Lockdep.limits = LockdepLimits()
        Lockdep.resetForTesting()
        // (Validation is never on with checks compiled out; the class limit is reported in every build.)
        if Lockdep.checksCompiledIn { XCTAssertTrue(Lockdep.isValidating, "reset turns validation back on") }
    }

    func testDependencyLimit() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        var limits = LockdepLimits()
        limits.maxDependencies = 2
        Lockdep.limits = limits
        let l = (0..<4).map { CheckedMutex(class: .unique("L\($0)")) }
        l[0].withLock { l[1].withLock {} }
        l[1].withLock { l[2].withLock {} }
        expectSilent()
        let line: UInt = #line + 1
        l[2].withLock { l[3].withLock {} }
        let r = try XCTUnwrap(expectOne(.capacityExceeded))
        XCTAssertEqual(r.title, "BUG: MAX_LOCKDEP_ENTRIES too low!")
        XCTAssertTrue(r.text.contains("(L3), at: testDependencyLimit() MisuseTests.swift:\(line)"))
        // Validation is off: an obvious inversion is no longer reported.
        l[3].withLock { l[0].withLock {} }
        XCTAssertEqual(collector.reports.count, 1)
    }

    func testChainLimit() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        var limits = LockdepLimits()
        limits.maxChains = 3
        Lockdep.limits = limits
        let l = (0..<4).map { CheckedMutex(class: .unique("L\($0)")) }
        for m in l { m.withLock {} }
        let r = try XCTUnwrap(expectOne(.capacityExceeded))
        XCTAssertEqual(r.title, "BUG: MAX_LOCKDEP_CHAINS too low!")
        XCTAssertEqual(r.lock?.name, "L3")
    }

    func testWaitWithoutHoldingTheMutexIsReportedAndDoesNotWait() throws {
        let m = CheckedMutex(class: .unique("M"))
        let c = CheckedCondition("cond")
        c.wait(m)
        let r = try XCTUnwrap(expectOne(.unlockNotHeld))
        XCTAssertEqual(r.lock?.name, "M")
    }
}

/// After a capacity limit switches validation off, "is held" answers yes (as the kernel's
/// lock_is_held does when debug_locks is off), so callers' assertions do not misfire.
final class ValidationOffTests: LockdepTestCase {
    func testIsHeldAfterValidationSwitchedOff() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        var limits = Lockdep.limits
        limits.maxDepth = 2
        Lockdep.limits = limits
        defer { Lockdep.limits = LockdepLimits() }
        let locks = (0..<3).map { CheckedMutex(class: .unique("depth-\($0)")) }
        for lock in locks { lock.lock() }
        XCTAssertEqual(collector.kinds, [.capacityExceeded])
        XCTAssertFalse(Lockdep.isValidating)
        XCTAssertTrue(Lockdep.isHeld(locks[2]))
        for lock in locks.reversed() { lock.unlock() }
    }
}
