import Foundation
import XCTest
@testable import Lockdep

/// Runs `child` in a child of `fork()` and reports whether it exited 0 within `timeout`
/// (a child still running then is killed: it hung).
func childExitsCleanly(timeout: Duration = .seconds(10), _ child: () -> Bool) -> Bool {
    let pid = fork()
    if pid == 0 { _exit(child() ? 0 : 1) }
    precondition(pid > 0, "fork failed")
    let deadline = ContinuousClock.now + timeout
    var status: Int32 = 0
    while ContinuousClock.now < deadline {
        if waitpid(pid, &status, WNOHANG) == pid { return status == 0 }
        usleep(1_000)
    }
    kill(pid, SIGKILL)
    _ = waitpid(pid, &status, 0)
    return false
}

/// `fork()` while another thread is inside Lockdep's internals, then Lockdep used in the
/// child: the child's only thread must not wait for a lock held by a thread it lacks.
final class AdversarialForkTests: LockdepTestCase {
    func testChildUsesLockdepAfterForkWhileAnotherThreadHeldTheGraphLock() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        let inside = DispatchSemaphore(value: 0)
        Thread {
            graph.withLock { _ in   // a thread inside the validator (a chain being validated, a report being built)
                inside.signal()
                usleep(200_000)     // still inside when the test forks (a fork now waits for it to leave)
            }
        }.start()
        inside.wait()
        let clean = childExitsCleanly {
            Lockdep.reportHandler = .reportOnceAndContinue
            let a = CheckedMutex(class: .unique("adv.fork.a")), b = CheckedMutex(class: .unique("adv.fork.b"))
            a.withLock { b.withLock {} }
            _ = Lockdep.graphSize
            _ = Lockdep.statistics()
            return true
        }
        XCTAssertTrue(clean, "the child hung on (or failed after) a Lockdep lock held by a parent thread at the fork")
    }

    /// The same, by the public API alone: one thread switches the report handler (the graph
    /// lock) and takes locks (statistics) without pause while the test forks. In a fresh test
    /// process (``runInFreshTestProcess(_:file:line:)``): in the suite's, 1 child in 30 failed
    /// once, on a thread other tests left running.
    func testChildUsesLockdepAfterForksDuringHandlerSwitches() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        runInFreshTestProcess("LockdepTests.AdversarialForkTests/testHandlerSwitchForksInAFreshProcess")
    }

    /// Runs only in the fresh process of the test above.
    func testHandlerSwitchForksInAFreshProcess() throws {
        guard inFreshTestProcess else {
            throw XCTSkip("runs in the fresh process of testChildUsesLockdepAfterForksDuringHandlerSwitches")
        }
        final class Stop: @unchecked Sendable { var value = false; let lock = NSLock() }
        let stop = Stop()
        let done = DispatchSemaphore(value: 0)
        Thread {
            let m = CheckedMutex(class: .unique("adv.fork.hammer"))
            while !stop.lock.withLock({ stop.value }) {
                Lockdep.reportHandler = .reportOnceAndContinue
                m.withLock {}
            }
            done.signal()
        }.start()
        var hung = 0
        for _ in 0..<30 {
            if !childExitsCleanly(timeout: .seconds(5), {
                Lockdep.reportHandler = .reportOnceAndContinue
                CheckedMutex(class: .unique("adv.fork.child")).withLock {}
                return true
            }) { hung += 1 }
        }
        stop.lock.withLock { stop.value = true }
        done.wait()
        XCTAssertEqual(hung, 0, "children that hung or failed using Lockdep after a fork")
    }
}
