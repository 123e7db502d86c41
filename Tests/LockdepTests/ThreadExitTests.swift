import Foundation
import Glibc
import XCTest
@testable import Lockdep

/// Issue 15: a program that runs many short threads keeps no Lockdep state for the ones
/// that exited (a debug build used to keep every thread's name: +13 MB after 200k threads).
final class ThreadExitTests: LockdepTestCase {
    func testExitedThreadsLeaveNoNames() {
        let mutex = CheckedMutex("thread-exit.mutex")
        mutex.withLock {}   // this thread's own state first
        let before = Engine.keptThreadNameCount
        for round in 0..<40 {
            let threads = (0..<50).map { i in
                startNamedThread("short-\(round)-\(i)") { mutex.withLock {} }
            }
            threads.forEach { pthread_join($0, nil) }
        }
        // pthread_join returns after the thread-specific destructors ran.
        XCTAssertLessThanOrEqual(Engine.keptThreadNameCount, before, "2000 exited threads left names behind")
        expectSilent()
    }

    /// A thread that exits holding a lock is reported, and keeps its name: a later report
    /// about the lock ("held by thread ...") names it.
    func testAThreadExitingWithALockHeldIsStillNamed() {
        let mutex = CheckedMutex("thread-exit.leaked")
        let before = Engine.keptThreadNameCount
        pthread_join(startNamedThread("leaker") { mutex.lock() }, nil)
        // With checks compiled out there is no exit report and no name kept; every build
        // refuses and reports the other thread's release below.
        if Lockdep.checksCompiledIn { expectOne(.locksHeldAtThreadExit) }
        collector.clear()
        if Lockdep.checksCompiledIn { XCTAssertEqual(Engine.keptThreadNameCount, before + 1) }
        mutex.unlock()
        let r = expectOne(.unlockFromOtherThread)
        if Lockdep.checksCompiledIn { XCTAssertEqual(r?.otherThread, "leaker") }
    }

    /// The kernel's check at task exit: "WARNING: name/pid still has locks held!" and the
    /// held locks, delivered on the exiting thread (pthread_join returns after it).
    func testAThreadExitingWithLocksHeldIsReported() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        // One line each: a named lock's class is keyed by where it is created.
        let outer = CheckedMutex("thread-exit.outer")
        let inner = CheckedSpinLock("thread-exit.inner")
        let innerLine = Locked<UInt>(0)
        pthread_join(startNamedThread("exit-holder") {
            outer.lock()
            innerLine.value = #line; inner.lock()
        }, nil)
        let r = expectOne(.locksHeldAtThreadExit)
        XCTAssertTrue(r?.title.hasPrefix("WARNING: exit-holder/") == true, r?.title ?? "")
        XCTAssertTrue(r?.title.hasSuffix(" still has locks held!") == true, r?.title ?? "")
        XCTAssertEqual(r?.thread, "exit-holder")
        XCTAssertEqual(r?.heldLocks.map(\.name), ["thread-exit.outer", "thread-exit.inner"])
        XCTAssertEqual(r?.site?.line, innerLine.value)
        XCTAssertTrue(r?.text.contains("2 locks held by \"exit-holder\":") == true, r?.text ?? "")
        XCTAssertTrue(r?.text.contains("is exiting while holding 2 locks") == true, r?.text ?? "")
        // The holds stay: another thread cannot take them.
        XCTAssertFalse(inner.tryLock())
        collector.clear()
    }

    /// A report handler runs on the exiting thread and may use checked locks there.
    func testAHandlerMayTakeLocksOnTheExitingThread() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let handlerLock = CheckedMutex("thread-exit.handler")
        let kinds = Locked<[LockdepReport.Kind]>([])
        Lockdep.reportHandler = .custom { r in
            handlerLock.withLock { kinds.withLock { $0.append(r.kind) } }
        }
        let leaked = CheckedMutex("thread-exit.leaked-under-handler")
        pthread_join(startNamedThread("exit-handler") { leaked.lock() }, nil)
        XCTAssertEqual(kinds.value, [.locksHeldAtThreadExit])
        handlerLock.withLock {}
    }

    /// With validation off (after a capacity report) held-lock stacks are not exact: a thread
    /// exiting with one left is not reported.
    func testNoExitReportWhileValidationIsOff() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        switchValidationOff()
        let m = CheckedMutex("thread-exit.unvalidated")
        pthread_join(startNamedThread("exit-unvalidated") { m.lock() }, nil)
        expectSilent()
    }
}

/// A joinable thread whose name Lockdep keeps (set through Lockdep's setter: these tests
/// count the names Lockdep keeps, and must see one kept for every thread).
private func startNamedThread(_ name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    startJoinableThread(named: name) {
        Lockdep.currentThreadName = name
        body()
    }
}
