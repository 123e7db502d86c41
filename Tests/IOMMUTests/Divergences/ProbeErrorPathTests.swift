import IOMMU
import Lockdep
import RCU
import XCTest

/// Divergence 7 (issue 16): `__iommu_probe_device` holds `group->mutex` from `list_add` to
/// `list_del`, also on its error path; design D2 frees `dev_iommu` (and disables its work)
/// after the unlock instead of dropping the mutex while the gdev is listed.
final class ProbeErrorPathTests: IOMMUTestCase {
    func testD2WorkerNeverSeesAFailingProbesGdevListed() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, design: .devmutex)
            let a = r.makeDevice(name: "devA", groupTag: "bridge")
            let b = r.makeDevice(name: "devB", groupTag: "bridge")
            try r.probeDevice(a)
            b.failAttach.store(true, ordering: .relaxed)
            let published = r.hooks.arm(.probeAfterPublish)
            let prober = TestThread(named: "prober") {
                do throws(IOMMUError) { try r.probeDevice(b); XCTFail("probe must fail") } catch {
                    XCTAssertEqual(error, .attachFailed)
                }
            }
            XCTAssertTrue(published.waitUntilReached())       // dev->iommu_group set, gdev not listed yet
            let worker = r.hooks.arm(.workerBeforeGroupMutex)
            let isr = TestThread(named: "isr", context: .hardirq) { XCTAssertTrue(r.reportBroken(b)) }
            XCTAssertTrue(isr.join())
            XCTAssertTrue(worker.waitUntilReached())           // the D2 worker holds b's group, before its mutex
            published.release()
            // The prober links, fails the attach, unlinks and deinits under the mutex, unlocks, then
            // waits in disable_work_sync for the worker.
            let deadline = Date().addingTimeInterval(10)
            while r.group(of: b) != nil && Date() < deadline { usleep(1000) }
            XCTAssertNil(r.group(of: b), "deinit ran under the mutex, before the work was disabled")
            worker.release()
            XCTAssertTrue(prober.join())
            XCTAssertEqual(r.counters.quarantined.load(ordering: .relaxed), 0, "the gdev was never listed unlocked")
            XCTAssertEqual(r.counters.workerRevalidationFailed.load(ordering: .relaxed), 1)
            XCTAssertEqual(r.snapshot(of: a)?.recoveryCount, 0)
            XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty)
            try r.releaseDevice(a)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
