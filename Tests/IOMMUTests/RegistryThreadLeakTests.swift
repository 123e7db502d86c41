import Foundation
import IOMMU
import Lockdep
import RCU
import XCTest

/// Issue 15: a `Registry` dropped without `shutdown()` must not leak its work queue's threads.
final class RegistryThreadLeakTests: IOMMUTestCase {
    /// The OS threads of this process (`/proc/self/task`).
    private func threadCount() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count
    }

    /// The names of this process's OS threads (for the failure message).
    private func threadNames() -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.sorted()
    }

    /// Waits (bounded) for the thread count to come back to `expected`: an exiting thread
    /// leaves /proc/self/task a moment after it is joined.
    private func settle(to expected: Int) throws -> Int {
        let deadline = Date().addingTimeInterval(5)
        var count = try threadCount()
        while count > expected && Date() < deadline {
            usleep(2000)
            count = try threadCount()
        }
        return count
    }

    func testDroppedRegistryStopsItsWorkerThreads() throws {
        rcuBarrier()
        // Warm up what starts once per process (the RCU callback worker, Foundation's threads).
        let warmup = Registry()
        let warm = warmup.makeDevice(name: "warm")
        try warmup.probeDevice(warm)
        try warmup.releaseDevice(warm)
        warmup.shutdown()
        rcuBarrier()
        usleep(50_000)                                      // exiting threads leave /proc
        let before = try threadCount()
        let namesBefore = threadNames()
        for round in 0..<20 {
            var registry: Registry<RCUMemb>? = Registry()
            let dev = registry!.makeDevice(name: "dev\(round)")
            try registry!.probeDevice(dev)
            XCTAssertGreaterThanOrEqual(try threadCount(), before + 2, "the work queue's two threads run")
            let isr = TestThread(named: "isr", context: .hardirq) { [registry] in _ = registry!.reportBroken(dev) }
            XCTAssertTrue(isr.join())
            try registry!.releaseDevice(dev)
            registry = nil                                  // no shutdown()
        }
        rcuBarrier()
        XCTAssertEqual(try settle(to: before), before,
                       "20 registries dropped without shutdown() left threads behind: \(namesBefore) -> \(threadNames())")
    }
}
