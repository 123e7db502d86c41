import Foundation
import XCTest
@testable import Lockdep

final class AssertionTests: LockdepTestCase {
    func testAssertHeldModes() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let rw = CheckedRWLock(class: .unique("rw"))
        rw.withReadLock {
            Lockdep.assertHeld(rw)
            Lockdep.assertHeld(rw, .read)
            XCTAssertTrue(Lockdep.isHeld(rw, mode: .read))
            XCTAssertFalse(Lockdep.isHeld(rw, mode: .write))
        }
        rw.withWriteLock {
            Lockdep.assertHeld(rw, .write)
        }
        expectSilent()
        rw.withReadLock { Lockdep.assertHeld(rw, .write) }
        XCTAssertEqual(collector.kinds, [.assertionFailed])
        XCTAssertTrue(collector.reports[0].text.contains("lock (rw) is not held for write"))
    }

    func testAssertNotHeldAndNoneHeld() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("m"))
        Lockdep.assertNotHeld(m)
        Lockdep.assertNoneHeld()
        expectSilent()
        m.withLock {
            Lockdep.assertNotHeld(m)
            Lockdep.assertNoneHeld()
        }
        XCTAssertEqual(collector.kinds, [.assertionFailed, .assertionFailed])
        XCTAssertTrue(collector.reports[0].text.contains("lock (m) is held but must not be"))
        XCTAssertTrue(collector.reports[1].text.contains("1 lock(s) held but none may be"))
    }

    func testPinUnpinBalanced() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("m"))
        m.lock()
        let cookie = Lockdep.pin(m)
        Lockdep.unpin(m, cookie)
        m.unlock()
        expectSilent()
        Lockdep.unpin(m, cookie)
        XCTAssertEqual(collector.kinds, [.assertionFailed])
    }

    func testMightLockRecordsTheDependency() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let a = CheckedMutex(class: .unique("A")), b = CheckedMutex(class: .unique("B"))
        a.withLock { Lockdep.mightLock(b) }
        XCTAssertFalse(Lockdep.isHeld(b))
        expectSilent()
        b.withLock { a.withLock {} }
        let r = try XCTUnwrap(expectOne(.circularDependency))
        XCTAssertEqual(r.chain.map { "\($0.from)->\($0.to)" }, ["A->B", "B->A"])
    }

    func testMightSleep() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        Lockdep.mightSleep()
        expectSilent()
        Lockdep.withContext(.softirq) { Lockdep.mightSleep() }
        Lockdep.withInterruptsDisabled { Lockdep.mightSleep() }
        XCTAssertEqual(collector.kinds, [.sleepInInvalidContext, .sleepInInvalidContext])
        XCTAssertTrue(collector.reports[1].text.contains("hardirqs disabled"))
    }

    func testContextsNestAndRestore() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        XCTAssertEqual(Lockdep.currentContext, .process)
        Lockdep.withContext(.softirq) {
            XCTAssertEqual(Lockdep.currentContext, .softirq)
            Lockdep.withContext(.hardirq) { XCTAssertEqual(Lockdep.currentContext, .hardirq) }
            Lockdep.withContext(.hardirq) { XCTAssertEqual(Lockdep.currentContext, .hardirq) }
            XCTAssertEqual(Lockdep.currentContext, .softirq)
        }
        XCTAssertEqual(Lockdep.currentContext, .process)
    }

    func testChecksAreCompiledInForDebugTests() throws {
        // A debug build must have the checks: only another build (`swift test -c release`) skips.
        #if !DEBUG
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        #endif
        XCTAssertTrue(Lockdep.checksCompiledIn)
        XCTAssertTrue(Lockdep.isValidating)
    }
}
