import Foundation
import XCTest
@testable import Lockdep

/// The generic hooks the RCU module uses, exercised the way it will call them: a read section is
/// a recursive-read acquire of a pseudo-lock, synchronize/barrier an empty write section.
final class RCUHookTests: LockdepTestCase {
    let rcu = LockdepMap("rcu_read", key: "test-rcu_read", options: [.atomic, .rcu])
    let srcu = LockdepMap("srcu_read", key: "test-srcu_read", options: [.rcu])

    func readLock(_ map: LockdepMap) { Lockdep.acquire(map, mode: .recursiveRead) }
    func readUnlock(_ map: LockdepMap) { Lockdep.release(map) }
    func synchronize(_ map: LockdepMap) { Lockdep.emptyWriteSection(map) }

    func testNestedReadSectionsAndIsHeld() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        readLock(rcu)
        readLock(rcu)
        XCTAssertTrue(Lockdep.isHeld(rcu, mode: .read))
        readUnlock(rcu)
        XCTAssertTrue(Lockdep.isHeld(rcu))
        readUnlock(rcu)
        XCTAssertFalse(Lockdep.isHeld(rcu))
        synchronize(rcu)
        expectSilent()
    }

    func testSynchronizeOfAnotherFlavorInsideAtomicReadSection() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        readLock(rcu)
        synchronize(srcu)          // not illegal for srcu, but sleeping inside an atomic section
        readUnlock(rcu)
        XCTAssertEqual(collector.kinds, [.sleepInInvalidContext])
    }

    func testSynchronizeOfSameSleepableFlavorInsideItsReadSection() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        readLock(srcu)
        synchronize(srcu)
        readUnlock(srcu)
        let r = try XCTUnwrap(expectOne(.illegalSynchronize))
        XCTAssertEqual(r.classes, ["srcu_read"])
    }

    func testSynchronizeUnderMutexReadersTakeAcrossThreads() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("config->mutex"))
        let srcu = self.srcu
        onThread(named: "reader") {
            Lockdep.acquire(srcu, mode: .recursiveRead)
            m.withLock {}
            Lockdep.release(srcu)
        }
        onThread(named: "updater") {
            m.withLock { Lockdep.emptyWriteSection(srcu) }
        }
        let r = try XCTUnwrap(expectOne(.circularDependency))
        XCTAssertEqual(r.thread, "updater")
        XCTAssertEqual(r.otherThread, "reader")
        XCTAssertEqual(Set(r.classes), ["config->mutex", "srcu_read"])
    }

    func testReadersInHardirqWithSpinlockAreFine() {
        let s = CheckedSpinLock(class: .unique("fault->lock"))
        Lockdep.withContext(.hardirq) {
            readLock(rcu)
            Lockdep.dereferenceCheck(rcu)
            s.withLock {}
            readUnlock(rcu)
        }
        s.withLockIRQ {}
        expectSilent()
    }

    func testCallRCUCallbacksRunInSoftirq() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let s = CheckedSpinLock(class: .unique("free->lock"))
        let m = CheckedMutex(class: .unique("sleepy"))
        Lockdep.withContext(.softirq) { s.withLock {} }
        expectSilent()
        Lockdep.withContext(.softirq) { m.withLock {} }
        XCTAssertEqual(collector.kinds, [.sleepInInvalidContext])
    }

    func testDereferenceProtectedByUpdateLock() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("group->mutex"))
        m.withLock { Lockdep.dereferenceCheck(rcu, m) }
        readLock(rcu); Lockdep.dereferenceCheck(rcu, m); readUnlock(rcu)
        expectSilent()
        Lockdep.dereferenceCheck(rcu, m)
        XCTAssertEqual(collector.kinds, [.suspiciousDereference])
    }
}

final class DereferenceFastFormTests: LockdepTestCase {
    func testAllocationFreeForm() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let rcu = LockdepMap(class: .unique("rcu_read"), options: [.atomic, .rcu])
        let m = CheckedMutex(class: .unique("group->mutex"))
        Lockdep.acquire(rcu, mode: .recursiveRead)
        Lockdep.dereferenceCheck(readSection: rcu)
        Lockdep.release(rcu)
        m.withLock { Lockdep.dereferenceCheck(readSection: rcu, orHeld: m) }
        Lockdep.dereferenceCheck(readSection: rcu, condition: true)
        expectSilent()
        let line: UInt = #line + 1
        Lockdep.dereferenceCheck(readSection: rcu, orHeld: m)
        let r = try XCTUnwrap(expectOne(.suspiciousDereference))
        XCTAssertEqual(r.classes, ["rcu_read", "group->mutex"])
        XCTAssertEqual(r.site?.line, line)
        collector.clear()
        Lockdep.dereferenceCheck(readSection: rcu)
        XCTAssertEqual(collector.reports.first?.classes, ["rcu_read"])
    }
}

/// Regressions found by the IOMMU port.
final class RCUHookRegressionTests: LockdepTestCase {
    let rcu = LockdepMap("rcu_read", key: "test-rcu_read-regression", options: [.atomic, .rcu])

    /// Readers in hardirq context and a later grace-period wait in process context are not
    /// an "inconsistent lock state": the wait does not exclude readers.
    func testSynchronizeAfterHardirqReadersIsSilent() {
        Lockdep.withContext(.hardirq) {
            Lockdep.acquire(rcu, mode: .recursiveRead)
            Lockdep.release(rcu)
        }
        Lockdep.emptyWriteSection(rcu)
        expectSilent()
    }
}
