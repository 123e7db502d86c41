import Lockdep
import XCTest

/// The Lockdep usage example (seed 001): the cancel under
/// the mutex the worker takes is reported although nothing deadlocks.
final class UsageExampleTests: LockdepTestCase {
    func testSeed001ExampleIsReported() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
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

/// "Reading a report": the overview snippet on a one-worker queue, whose report's fields are the
/// ones "The structured value" asserts (the worker's thread is "iommu/0" on every run).
final class ReadingAReportExampleTests: LockdepTestCase {
    final class Group: Sendable { let mutex = CheckedMutex("group->mutex") }

    func testStructuredValueOfTheSeed001Report() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let group = Group()
        let queue = WorkQueue("iommu", threads: 1)                  // one worker: thread "iommu/0"
        defer { queue.shutdown() }
        let work = WorkItem("gdev_broken", on: queue) { group.mutex.withLock { /* quarantine(dev) */ } }
        work.queue(); work.flush()                                  // the worker ran: work -> mutex
        group.mutex.withLock { _ = work.cancelSync() }               // mutex -> work: cycle

        let report = try XCTUnwrap(expectOne(.circularDependency))
        XCTAssertEqual(report.kind, .circularDependency)
        XCTAssertEqual(Set(report.classes), ["group->mutex", "work:gdev_broken"])
        XCTAssertEqual(report.chain.map(\.to), ["group->mutex", "work:gdev_broken"])
        XCTAssertEqual(report.chain[0].thread, "iommu/0")       // the queue's only worker
    }
}
