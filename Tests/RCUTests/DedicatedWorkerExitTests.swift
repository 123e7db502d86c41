#if canImport(Glibc)
import Glibc
#endif
import Foundation
import RCU
import RCUTestSupport
import XCTest

/// `useCallbackWorkers(.perThread)` gives a thread its own call_rcu worker; the worker is
/// freed when the thread exits, so short-lived threads leave no worker threads behind.
final class DedicatedWorkerExitTests: XCTestCase {
    /// The process's OS threads (`/proc/self/task`).
    private var osThreads: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? -1
    }

    /// Waits (up to 10 s) for the OS thread count to come down to `target`; returns the last count.
    private func threadCount(settlingAt target: Int) -> Int {
        var count = osThreads
        for _ in 0..<1_000 where count > target {
            usleep(10_000)
            count = osThreads
        }
        return count
    }

    func testExitedThreadsLeaveNoDedicatedWorkers() {
        for flavor in [RCUMemb.self, RCUQSBR.self] as [any RCUFlavor.Type] { checkNoLeak(flavor) }
    }

    private func checkNoLeak<F: RCUFlavor>(_: F.Type) {
        F.barrier()    // the shared worker exists before the count
        let ledger = Ledger()
        let before = osThreads
        let threads = 200
        for index in 0..<threads {
            runOnJoinedThread(named: "worker-exit") {
                try? F.useCallbackWorkers(.perThread)
                precondition(F.hasDedicatedCallbackWorker)
                // Pending when the thread exits: handed to the shared worker, still run once.
                F.retire(Tracked(id: index, ledger: ledger))
            }
        }
        let after = threadCount(settlingAt: before)
        // A few threads of the test process (the pool, a sampler) may come and go meanwhile.
        XCTAssertLessThanOrEqual(after, before + 2, "\(F.name): \(threads) exited threads left \(after - before) OS threads")
        F.barrier()
        XCTAssertEqual(ledger.freedCount, threads, "\(F.name): callbacks pending at exit ran")
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    /// A worker freed with `.shared` before the thread exits is not freed again at exit.
    func testSharedBeforeExitFreesOnce() {
        let before = osThreads
        for _ in 0..<20 {
            runOnJoinedThread(named: "worker-exit") {
                try? RCUMemb.useCallbackWorkers(.perThread)
                try? RCUMemb.useCallbackWorkers(.shared)
                precondition(!RCUMemb.hasDedicatedCallbackWorker)
                try? RCUMemb.useCallbackWorkers(.perThread)
            }
        }
        XCTAssertLessThanOrEqual(threadCount(settlingAt: before), before + 2)
    }
}
