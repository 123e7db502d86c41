import Foundation
import RCU
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Callbacks pending at `fork()` run in the child, whose call_rcu worker is
/// recreated by the atfork hooks the package installs.
final class ForkTests: XCTestCase {
    func testPendingCallbacksRunInForkedChildPerFlavor() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        for flavor in allFlavors { checkFork(flavor) }
    }

    private func checkFork<F: RCUFlavor>(_: F.Type) {
        let ran = Counter()
        // Keep the call_rcu worker busy in a slow callback: whatever is queued
        // meanwhile waits for its next batch, which the fork's prepare hook
        // (call_rcu_before_fork) holds back. Those callbacks are pending at fork.
        let busy = DispatchSemaphore(value: 0)
        F.retire {
            busy.signal()
            usleep(200_000)
        }
        busy.wait()
        let count = 25
        for _ in 0..<count { F.retire { ran.bump(F.self) } }
        XCTAssertGreaterThanOrEqual(F.pendingCallbacks, count, "\(F.name): callbacks queued behind the busy one")

        let child = fork()
        if child == 0 {
            // Child: only this thread exists. The pending callbacks must run here.
            if ran.runs.load(ordering: .relaxed) != 0 { _exit(2) }   // not pending after all
            F.barrier()
            _exit(ran.runs.load(ordering: .relaxed) == count ? 0 : 1)
        }
        XCTAssertGreaterThan(child, 0, "fork failed")
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child, &status, 0), child)
        XCTAssertEqual(status, 0, "\(F.name): child ran every pending callback after fork (status \(status))")
        F.barrier()
        XCTAssertEqual(ran.runs.load(ordering: .relaxed), count, "\(F.name): and so did the parent")
    }
}

/// Whether the process was built with `--sanitize=thread`.
let runningUnderThreadSanitizer: Bool = dlsym(dlopen(nil, RTLD_LAZY), "__tsan_init") != nil
