import Foundation
import IOMMU
import Lockdep
import RCU
import TestSupport
import XCTest

/// A registry created before `fork()`, used in the child: its work queue's threads are the
/// parent's, so queueing broken-device work, flushing it and shutting down are reported and
/// refused there instead of waiting for ever.
final class RegistryForkTests: XCTestCase {
    private final class ChildReports: @unchecked Sendable {
        var reports: [LockdepReport] = []
    }

    func testRegistryWorkQueueIsReportedAndRefusedInAForkedChild() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        let registry = Registry(configuration: .init(design: .rcu))
        defer { registry.shutdown() }
        let dev = registry.makeDevice(name: "0000:00:1f.0", groupTag: "fork-group")
        try registry.probeDevice(dev)
        defer { try? registry.releaseDevice(dev) }
        XCTAssertTrue(registry.reportBroken(dev), "the parent queues the quarantine work")
        registry.flushBrokenWork()

        let pid = fork()
        if pid == 0 {
            alarm(10)   // a hang ends as SIGALRM, which the parent sees
            let seen = ChildReports()
            Lockdep.reportHandler = .custom { seen.reports.append($0) }
            let queued = registry.reportBroken(dev)
            registry.flushBrokenWork()
            registry.shutdown()
            let named = seen.reports.allSatisfy {
                $0.kind == .workQueueUsedAfterFork && $0.text.contains("workqueue \"iommu_broken\"")
            }
            _exit(queued ? 10 : seen.reports.count != 3 ? 20 + Int32(min(seen.reports.count, 9)) : named ? 0 : 30)
        }
        XCTAssertGreaterThan(pid, 0, "fork failed")
        var status: Int32 = 0
        let deadline = ContinuousClock.now + .seconds(15)
        var exited = false
        while ContinuousClock.now < deadline {
            if waitpid(pid, &status, WNOHANG) == pid { exited = true; break }
            usleep(1_000)
        }
        if !exited { kill(pid, SIGKILL); _ = waitpid(pid, &status, 0) }
        XCTAssertTrue(exited, "the child hung and was killed")
        XCTAssertEqual(status & 0x7f, 0, "the child died of signal \(status & 0x7f) (SIGALRM: it hung)")
        XCTAssertEqual((status >> 8) & 0xff, 0, "10: work was queued; 2n: n reports instead of 3; 30: a report of another kind or queue")
    }
}
