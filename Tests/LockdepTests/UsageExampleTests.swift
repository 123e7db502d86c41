import Lockdep
import XCTest

/// The Lockdep usage example (seed 001): the cancel under
/// the mutex the worker takes is reported although nothing deadlocks.
final class UsageExampleTests: LockdepTestCase {
    func testSeed001ExampleIsReported() throws {
        let workQueue = WorkQueue("iommu")
        defer { workQueue.shutdown() }
        let groupMutex = CheckedMutex("group->mutex")
        let brokenWork = WorkItem("gdev_broken", on: workQueue) {
            groupMutex.withLock { /* quarantine the device */ }   // the worker takes group->mutex
        }

        _ = brokenWork.queue()
        brokenWork.flush()                 // the worker ran: group->mutex inside work:gdev_broken
        groupMutex.withLock {
            _ = brokenWork.cancelSync()    // seed 001: would wait for a worker that waits for us
        }

        let report = try XCTUnwrap(expectOne(.circularDependency))
        XCTAssertEqual(Set(report.classes), ["group->mutex", "work:gdev_broken"])
    }
}
