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

    /// A thread that exits holding a lock keeps its name: a later report about the lock
    /// ("held by thread ...") names it.
    func testAThreadExitingWithALockHeldIsStillNamed() {
        let mutex = CheckedMutex("thread-exit.leaked")
        let before = Engine.keptThreadNameCount
        pthread_join(startNamedThread("leaker") { mutex.lock() }, nil)
        XCTAssertEqual(Engine.keptThreadNameCount, before + 1)
        mutex.unlock()
        let r = expectOne(.unlockFromOtherThread)
        XCTAssertEqual(r?.otherThread, "leaker")
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
