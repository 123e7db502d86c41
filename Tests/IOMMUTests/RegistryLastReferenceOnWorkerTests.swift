import Foundation
import IOMMU
import Lockdep
import RCU
import XCTest

/// The last reference to a registry dropped on one of its own worker threads (the work function
/// holds the registry while it runs): `deinit` shuts the work queue down from that worker. It must
/// not hang and must not leave the worker thread unjoined and undetached (a thread leak that
/// ThreadSanitizer reports).
final class RegistryLastReferenceOnWorkerTests: IOMMUTestCase {
    func testLastReferenceDroppedOnItsOwnWorker() throws {
        var registry: Registry<RCUMemb>? = Registry()
        weak let weakRegistry = registry
        let dev = registry!.makeDevice(name: "0000:00:01.0")
        try registry!.probeDevice(dev)
        let parked = registry!.hooks.arm(.workerStart)
        let reporter = registry!
        let isr = TestThread(named: "isr", context: .hardirq) { _ = reporter.reportBroken(dev) }
        XCTAssertTrue(isr.join())
        XCTAssertTrue(parked.waitUntilReached())
        _ = consume reporter
        registry = nil
        XCTAssertNotNil(weakRegistry, "the running work function holds the registry")
        parked.release()                    // the worker's return drops the last reference
        let deadline = Date().addingTimeInterval(10)
        while weakRegistry != nil && Date() < deadline { usleep(1000) }
        XCTAssertNil(weakRegistry, "the registry's deinit ran on its worker and returned")
        expectNoLockdepReports()
    }
}
