import Foundation
import XCTest
@testable import Lockdep

/// Misuse of the checked locks that would hang or let a second thread into a critical section:
/// reported through `Lockdep.reportHandler` and refused in every build. With checks compiled in the
/// reports come from Lockdep; compiled out (`swift test -c release`), from the owner word each
/// lock keeps. Every case runs its misuse on a bounded thread, so a regression fails instead of
/// hanging the suite, and then shows that another thread can still take the lock.
final class ReleaseMisuseTests: LockdepTestCase {

    // MARK: recursive acquires by the holder

    func testRecursiveMutexLockIsReportedAndRefused() throws {
        let m = CheckedMutex(class: .unique("rm.mutex"))
        let line: UInt = #line + 3
        XCTAssertTrue(bounded("holder") {
            m.lock()
            m.lock()
            XCTAssertTrue(m.isHeldByCurrentThread)
            m.unlock()                                   // matches the refused lock: releases nothing
            XCTAssertTrue(m.isHeldByCurrentThread)
            XCTAssertFalse(otherThreadTakes { tryAndRelease(m) })
            m.unlock()
            XCTAssertFalse(m.isHeldByCurrentThread)
        })
        let r = try XCTUnwrap(expectOne(.recursiveLocking))
        XCTAssertEqual(r.title, "WARNING: possible recursive locking detected")
        XCTAssertEqual(r.lock?.name, "rm.mutex")
        XCTAssertEqual(r.site?.line, line)
        XCTAssertEqual(r.site?.fileName, "ReleaseMisuseTests.swift")
        XCTAssertTrue(r.text.contains("CheckedMutex.lock() was refused"), r.text)
        XCTAssertTrue(r.text.contains("ReleaseMisuseTests.swift:\(line)"), r.text)
        XCTAssertTrue(otherThreadTakes { m.withLock { true } })
        XCTAssertEqual(collector.kinds, [.recursiveLocking])
    }

    func testRecursiveMutexVariantsAreRefused() {
        let m = CheckedMutex(class: .unique("rm.mutex.variants"))
        let outer = CheckedMutex(class: .unique("rm.mutex.outer"))
        XCTAssertTrue(bounded("holder") {
            m.lock()
            m.lock(subclass: 1)
            outer.withLock { m.lock(nestedUnder: outer) }
            m.unlock(); m.unlock()                       // the two refused acquires
            XCTAssertTrue(m.isHeldByCurrentThread)
            m.unlock()
        })
        XCTAssertEqual(collector.kinds, [.recursiveLocking, .recursiveLocking])
        XCTAssertTrue(collector.reports[0].text.contains("CheckedMutex.lock(subclass:) was refused"))
        XCTAssertTrue(collector.reports[1].text.contains("CheckedMutex.lock(nestedUnder:) was refused"))
        XCTAssertTrue(otherThreadTakes { m.withLock { true } })
    }

    func testNestedWithLockRunsUnderTheOuterHold() throws {
        let m = CheckedMutex(class: .unique("rm.withLock"))
        let ran = Locked(false)
        XCTAssertTrue(bounded("holder") {
            m.withLock {
                m.withLock { ran.value = m.isHeldByCurrentThread }
                XCTAssertTrue(m.isHeldByCurrentThread)
            }
            XCTAssertFalse(m.isHeldByCurrentThread)
        })
        XCTAssertTrue(ran.value)
        let r = try XCTUnwrap(expectOne(.recursiveLocking))
        XCTAssertTrue(r.text.contains("CheckedMutex.withLock(_:) was refused"), r.text)
        XCTAssertTrue(otherThreadTakes { m.withLock { true } })
    }

    func testWithLockReleasesDespiteAnUnmatchedRefusedLock() {
        let m = CheckedMutex(class: .unique("rm.unmatched"))
        XCTAssertTrue(bounded("holder") {
            m.withLock { m.lock() }                      // refused, never matched
            XCTAssertFalse(m.isHeldByCurrentThread)
        })
        XCTAssertEqual(collector.kinds, [.recursiveLocking])
        XCTAssertTrue(otherThreadTakes { m.withLock { true } })
        // The count was forgotten: an ordinary pair afterwards really releases.
        m.lock(); m.unlock()
        XCTAssertTrue(otherThreadTakes { tryAndRelease(m) })
        XCTAssertEqual(collector.kinds, [.recursiveLocking])
    }

    func testRecursiveSpinLockIsReportedAndRefused() throws {
        let s = CheckedSpinLock(class: .unique("rm.spin"))
        let line: UInt = #line + 3
        XCTAssertTrue(bounded("holder") {
            s.lock()
            s.lock()
            s.unlock()
            XCTAssertTrue(s.isHeldByCurrentThread)
            XCTAssertFalse(otherThreadTakes { tryAndRelease(s) })
            s.unlock()
            s.withLock { s.withLock {} }
            s.withLock { s.lock() }
            XCTAssertFalse(s.isHeldByCurrentThread)
        })
        XCTAssertEqual(collector.kinds, [.recursiveLocking, .recursiveLocking, .recursiveLocking])
        let r = try XCTUnwrap(collector.reports.first)
        XCTAssertEqual(r.site?.line, line)
        XCTAssertTrue(r.text.contains("CheckedSpinLock.lock() was refused"), r.text)
        XCTAssertTrue(collector.reports[1].text.contains("CheckedSpinLock.withLock(_:) was refused"))
        XCTAssertTrue(otherThreadTakes { s.withLock { true } })
    }

    func testRecursiveWriteLockIsReportedAndRefused() throws {
        let rw = CheckedRWLock(class: .unique("rm.rw"))
        let line: UInt = #line + 3
        XCTAssertTrue(bounded("holder") {
            rw.writeLock()
            rw.writeLock()
            rw.unlock()
            XCTAssertTrue(rw.isWriteHeldByCurrentThread)
            XCTAssertFalse(otherThreadTakes { rw.tryReadLock() && { rw.unlock(); return true }() })
            rw.unlock()
            rw.withWriteLock { rw.withWriteLock {} }
            rw.withWriteLock { rw.writeLock() }
            XCTAssertFalse(rw.isWriteHeldByCurrentThread)
        })
        XCTAssertEqual(collector.kinds, [.recursiveLocking, .recursiveLocking, .recursiveLocking])
        let r = try XCTUnwrap(collector.reports.first)
        XCTAssertEqual(r.site?.line, line)
        XCTAssertTrue(r.text.contains("CheckedRWLock.writeLock() was refused"), r.text)
        XCTAssertTrue(otherThreadTakes { rw.withWriteLock { true } })
        XCTAssertTrue(otherThreadTakes { rw.withReadLock { true } })
    }

    func testReadLockByTheWriterIsReportedAndRefused() throws {
        let rw = CheckedRWLock(class: .unique("rm.rw.read"))
        let line: UInt = #line + 3
        XCTAssertTrue(bounded("holder") {
            rw.writeLock()
            rw.readLock()
            rw.unlock()                                  // matches the refused read: releases nothing
            XCTAssertTrue(rw.isWriteHeldByCurrentThread)
            rw.unlock()
            XCTAssertFalse(rw.isWriteHeldByCurrentThread)
            let ran = Locked(false)
            rw.withWriteLock { rw.withReadLock { ran.value = rw.isWriteHeldByCurrentThread } }
            XCTAssertTrue(ran.value)
            XCTAssertFalse(rw.isWriteHeldByCurrentThread)
        })
        XCTAssertEqual(collector.kinds, [.recursiveLocking, .recursiveLocking])
        let r = try XCTUnwrap(collector.reports.first)
        XCTAssertEqual(r.site?.line, line)
        XCTAssertTrue(r.text.contains("CheckedRWLock.readLock() was refused"), r.text)
        XCTAssertTrue(collector.reports[1].text.contains("CheckedRWLock.withReadLock(_:) was refused"))
        XCTAssertTrue(otherThreadTakes { rw.withWriteLock { true } })
    }

    func testRecursiveReadsStayAllowed() {
        let rw = CheckedRWLock(class: .unique("rm.rw.reads"))
        rw.readLock(); rw.readLock(); rw.unlock(); rw.unlock()
        rw.withReadLock { rw.withReadLock {} }
        expectSilent()
        XCTAssertTrue(otherThreadTakes { rw.withWriteLock { true } })
    }

    // MARK: releases by a thread that does not hold the lock

    /// A condition wait re-takes the mutex inside pthreads (the owner word can be stale after
    /// it where checks are compiled out): the holder's unlock afterwards is still its own.
    func testUnlockAfterAConditionWaitIsNotRefused() {
        let m = CheckedMutex(class: .unique("rm.cond.mutex"))
        let c = CheckedCondition("rm.cond")
        let ready = Locked(false)
        XCTAssertTrue(bounded("waiter") {
            let signaller = Thread {
                m.lock(); ready.value = true; c.signal(); m.unlock()
            }
            m.lock()
            signaller.start()
            while !ready.value { _ = c.wait(m, timeout: .milliseconds(10)) }
            XCTAssertTrue(m.isHeldByCurrentThread)
            m.unlock()
            XCTAssertFalse(m.isHeldByCurrentThread)
        })
        expectSilent()
        XCTAssertTrue(otherThreadTakes { m.withLock { true } })
    }

    func testMutexUnlockByAnotherThreadIsReportedAndRefused() throws {
        let m = CheckedMutex(class: .unique("rm.mutex.other"))
        let holder = StepThread("holder")
        defer { holder.finish() }
        holder.run { m.lock() }
        let line: UInt = #line + 1
        m.unlock()
        let r = try XCTUnwrap(expectOne(.unlockFromOtherThread))
        XCTAssertEqual(r.site?.line, line)
        XCTAssertEqual(r.lock?.name, "rm.mutex.other")
        XCTAssertTrue(r.text.contains("the release was not performed"), r.text)
        // Still held by its owner: nobody else gets in, and the owner's unlock is the real one.
        XCTAssertFalse(m.tryLock())
        holder.run { XCTAssertTrue(m.isHeldByCurrentThread); m.unlock() }
        XCTAssertTrue(otherThreadTakes { m.withLock { true } })
        XCTAssertEqual(collector.kinds, [.unlockFromOtherThread])
    }

    func testMutexUnlockNotHeldIsReportedAndRefused() throws {
        let m = CheckedMutex(class: .unique("rm.mutex.none"))
        let line: UInt = #line + 1
        m.unlock()
        let r = try XCTUnwrap(expectOne(.unlockNotHeld))
        XCTAssertEqual(r.site?.line, line)
        collector.clear()
        m.lock(); m.unlock()
        m.unlock()                                       // double unlock
        // Told apart from "never locked" only where Lockdep keeps its held-lock stack.
        XCTAssertEqual(collector.kinds, [Lockdep.checksCompiledIn ? .doubleUnlock : .unlockNotHeld])
        XCTAssertTrue(otherThreadTakes { m.withLock { true } })
    }

    func testSpinUnlockByAnotherThreadIsReportedAndRefused() throws {
        let s = CheckedSpinLock(class: .unique("rm.spin.other"))
        let holder = StepThread("holder")
        defer { holder.finish() }
        holder.run { s.lock() }
        s.unlock()
        XCTAssertNotNil(expectOne(.unlockFromOtherThread))
        XCTAssertFalse(s.tryLock())
        holder.run { s.unlock() }
        s.unlock()                                       // nobody holds it now
        XCTAssertEqual(collector.kinds, [.unlockFromOtherThread, .unlockNotHeld])
        XCTAssertTrue(otherThreadTakes { s.withLock { true } })
    }

    func testRWUnlockWhileAnotherThreadWritesIsReportedAndRefused() throws {
        let rw = CheckedRWLock(class: .unique("rm.rw.other"))
        let holder = StepThread("holder")
        defer { holder.finish() }
        holder.run { rw.writeLock() }
        rw.unlock()
        XCTAssertNotNil(expectOne(.unlockFromOtherThread))
        XCTAssertFalse(rw.tryReadLock())
        holder.run { rw.unlock() }
        rw.unlock()                                      // nobody holds it now
        XCTAssertEqual(collector.kinds, [.unlockFromOtherThread, .unlockNotHeld])
        XCTAssertTrue(otherThreadTakes { rw.withWriteLock { true } })
        XCTAssertTrue(otherThreadTakes { rw.withReadLock { true } })
    }
}

/// Runs `body` on a new thread; `false` (and a failure) if it has not finished in 10 s.
private func bounded(_ name: String, file: StaticString = #filePath, line: UInt = #line,
                     _ body: @escaping @Sendable () -> Void) -> Bool {
    let finished = startThread(named: name, body).join(timeout: 10)
    if !finished { XCTFail("the misuse blocked instead of being refused", file: file, line: line) }
    return finished
}

/// What `attempt` returns on another thread (`false` if it does not return within 10 s).
private func otherThreadTakes(_ attempt: @escaping @Sendable () -> Bool) -> Bool {
    let result = Locked(false)
    guard startThread(named: "other", { result.value = attempt() }).join(timeout: 10) else { return false }
    return result.value
}

/// A non-blocking probe: takes and releases the lock if it is free.
private func tryAndRelease(_ m: CheckedMutex) -> Bool {
    guard m.tryLock() else { return false }
    m.unlock()
    return true
}

private func tryAndRelease(_ s: CheckedSpinLock) -> Bool {
    guard s.tryLock() else { return false }
    s.unlock()
    return true
}
