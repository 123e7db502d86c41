import Foundation
import RCU
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// fork(): callbacks pending at the fork run in the child, whose call_rcu
/// worker is recreated by the atfork hooks the package installs; a child
/// whose parent had other registered reader threads refuses grace periods
/// with a clear error instead of crashing or hanging in liburcu.
///
/// Each test runs in a fresh test process (the test binary re-run with a
/// filter), so no other test's threads are registered readers at the fork.
final class ForkTests: XCTestCase {
    func testPendingCallbacksRunInForkedChildPerFlavor() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard try isolated("testPendingCallbacksRunInForkedChildPerFlavor") else { return }
        for flavor in allFlavors { checkFork(flavor) }
    }

    func testForkWithOtherRegisteredReadersRefusesGracePeriods() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard try isolated("testForkWithOtherRegisteredReadersRefusesGracePeriods") else { return }
        for flavor in [RCUMemb.self, RCUQSBR.self, RCUMemoryBarrier.self] as [any RCUFlavor.Type] {
            checkUnsafeFork(flavor)
        }
    }

    /// Runs `test` in a fresh process and returns `false`, or returns `true` when already in it.
    private func isolated(_ test: String) throws -> Bool {
        if IsolatedTest.isChild { return true }
        let run = try IsolatedTest.run("RCUTests.ForkTests/\(test)")
        XCTAssertEqual(run.status, 0, "isolated \(test) failed:\n\(run.output)")
        XCTAssertTrue(run.output.contains("Executed 1 test, with 0 failures"), run.output)
        return false
    }

    private func checkFork<F: RCUFlavor>(_: F.Type) {
        let ran = ForkRuns()
        // Keep the call_rcu worker busy in a slow callback: whatever is queued
        // meanwhile waits for its next batch, which the fork's prepare hook
        // (call_rcu_before_fork) holds back. Those callbacks are pending at fork.
        // The callback holds the worker until this thread is about to fork, and
        // 200 ms more for the hook to pause the worker: a fixed sleep from its
        // start let a loaded machine finish it, and the next batch, before the fork.
        let busy = DispatchSemaphore(value: 0)
        let forking = ForkFlag()
        F.retire {
            busy.signal()
            let deadline = ContinuousClock.now + .seconds(30)
            while !forking.isSet && ContinuousClock.now < deadline { usleep(1_000) }
            usleep(200_000)
        }
        busy.wait()
        let count = 25
        for _ in 0..<count { F.retire { ran.bump() } }
        XCTAssertGreaterThanOrEqual(F.pendingCallbacks, count, "\(F.name): callbacks queued behind the busy one")

        forking.set()
        let child = fork()
        if child == 0 {
            // Child: only this thread and the worker the child hook made exist. The pending
            // callbacks must run here (that worker may already be running them: only those
            // the parent ran before the fork say they were not pending).
            if ran.inParent.load(ordering: .relaxed) != 0 { _exit(2) }   // not pending after all
            F.barrier()
            _exit(ran.total.load(ordering: .relaxed) == count ? 0 : 1)
        }
        XCTAssertGreaterThan(child, 0, "fork failed")
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child, &status, 0), child)
        XCTAssertEqual(status, 0, "\(F.name): child ran every pending callback after fork (status \(status))")
        F.barrier()
        XCTAssertEqual(ran.total.load(ordering: .relaxed), count, "\(F.name): and so did the parent")
        XCTAssertEqual(ran.inParent.load(ordering: .relaxed), count)
    }

    private func checkUnsafeFork<F: RCUFlavor>(_: F.Type) {
        F.retire {}                       // the atfork hooks are installed on first use
        F.barrier()
        let registered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let reader = startThread(named: "other-reader") {
            F.withReader { reader in
                reader.read { _ in }
                F.quiescentStateIfQSBR()
                registered.signal()
                RCUQSBR.offline { release.wait() }   // a no-op for the other flavors
            }
        }
        registered.wait()

        let child = fork()
        if child == 0 {
            guard F.staleReadersAfterFork == 1 else { _exit(2) }
            let recorder = MisuseRecorder()
            F.synchronize()               // must be refused, not hang or crash
            F.barrier()
            let kinds = recorder.recorded.map(\.kind)
            _exit(kinds == [.gracePeriodAfterUnsafeFork, .gracePeriodAfterUnsafeFork] ? 0 : 1)
        }
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child, &status, 0), child)
        XCTAssertEqual(status, 0, "\(F.name): the child refused grace periods with a misuse report (status \(status))")
        XCTAssertEqual(F.staleReadersAfterFork, 0, "\(F.name): the parent is unaffected")
        release.signal()
        reader.wait()
        F.synchronize()
    }
}

/// Callbacks run, and how many ran in the process that queued them (a forked child's copy
/// counts those its parent ran before the fork: its own worker's runs are not among them).
private final class ForkRuns: Sendable {
    let total = Atomic<Int>(0)
    let inParent = Atomic<Int>(0)
    private let parent = getpid()

    func bump() {
        total.add(1, ordering: .relaxed)
        if getpid() == parent { inParent.add(1, ordering: .relaxed) }
    }
}

/// Set once, read from a call_rcu callback.
private final class ForkFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
