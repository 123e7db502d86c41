import Foundation
import XCTest
@testable import Lockdep

/// The owner word every checked lock keeps in every build: `isHeldByCurrentThread` (and the
/// reader-writer lock's `isWriteHeldByCurrentThread`) answer exactly, where `Lockdep.isHeld`
/// answers `true` (checks compiled out, or validation switched off by a capacity limit).
final class OwnerTests: LockdepTestCase {
    func testEachCheckedLockKnowsItsHolder() {
        let mutex = CheckedMutex(class: .unique("owner.mutex"))
        let spin = CheckedSpinLock(class: .unique("owner.spin"))
        let rw = CheckedRWLock(class: .unique("owner.rw"))
        XCTAssertFalse(mutex.isHeldByCurrentThread)
        XCTAssertFalse(spin.isHeldByCurrentThread)
        XCTAssertFalse(rw.isWriteHeldByCurrentThread)

        mutex.lock()
        spin.lock()
        let elsewhere = Locked([Bool]())
        onThread(named: "owner-other") {
            elsewhere.withLock { $0 = [mutex.isHeldByCurrentThread, spin.isHeldByCurrentThread] }
        }
        XCTAssertEqual(elsewhere.withLock { $0 }, [false, false], "another thread is not the holder")
        XCTAssertTrue(mutex.isHeldByCurrentThread)
        XCTAssertTrue(spin.isHeldByCurrentThread)
        spin.unlock()
        mutex.unlock()
        XCTAssertFalse(mutex.isHeldByCurrentThread)
        XCTAssertFalse(spin.isHeldByCurrentThread)

        XCTAssertTrue(mutex.tryLock())
        XCTAssertTrue(mutex.isHeldByCurrentThread, "a trylock records the owner")
        mutex.unlock()
        XCTAssertTrue(spin.tryLock())
        XCTAssertTrue(spin.isHeldByCurrentThread)
        spin.unlock()

        rw.withReadLock { XCTAssertFalse(rw.isWriteHeldByCurrentThread, "a read hold is not a write hold") }
        rw.withWriteLock { XCTAssertTrue(rw.isWriteHeldByCurrentThread) }
        XCTAssertFalse(rw.isWriteHeldByCurrentThread)
        XCTAssertTrue(rw.tryWriteLock())
        XCTAssertTrue(rw.isWriteHeldByCurrentThread)
        rw.unlock()
        XCTAssertFalse(rw.isWriteHeldByCurrentThread)
        expectSilent()
    }

    /// A condition wait releases the mutex and takes it back inside pthreads, while another
    /// thread holds it in between: the waiter is the holder again afterwards.
    func testMutexHolderIsKnownAfterAConditionWait() {
        let mutex = CheckedMutex(class: .unique("owner.cond.mutex"))
        let condition = CheckedCondition("owner.cond")
        let waiting = DispatchSemaphore(value: 0)
        let signalled = DispatchSemaphore(value: 0)
        let thread = Thread {
            waiting.wait()
            mutex.withLock { condition.signal() }
            signalled.signal()
        }
        thread.start()
        mutex.withLock {
            waiting.signal()
            _ = condition.wait(mutex, timeout: .seconds(5))
            XCTAssertTrue(mutex.isHeldByCurrentThread)
        }
        signalled.wait()
        XCTAssertFalse(mutex.isHeldByCurrentThread)
        expectSilent()
    }

    /// Past a capacity limit Lockdep stops tracking held locks and `isHeld` answers `true`;
    /// the owner word still tells the truth.
    func testOwnerWordStaysExactWhenValidationSwitchesItselfOff() {
        var limits = LockdepLimits()
        limits.maxDepth = 2
        Lockdep.limits = limits
        let locks = (0..<3).map { CheckedMutex(class: .unique("owner.depth.\($0)")) }
        let free = CheckedMutex(class: .unique("owner.free"))
        locks.forEach { $0.lock() }
        XCTAssertTrue(locks.allSatisfy(\.isHeldByCurrentThread))
        XCTAssertFalse(free.isHeldByCurrentThread, "Lockdep.isHeld says \(Lockdep.isHeld(free)) here")
        locks.reversed().forEach { $0.unlock() }
        XCTAssertFalse(locks.contains(where: \.isHeldByCurrentThread))
    }
}

/// A value guarded by an `NSLock`.
private final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&value) }
}
