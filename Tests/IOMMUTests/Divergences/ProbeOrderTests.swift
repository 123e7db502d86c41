import IOMMU
import Lockdep
import RCU
import XCTest

/// Divergence 10 (issue 16): the driver's `probe_device` runs before `device_group`, so D2's
/// ISR path (the driver's `master`) reaches `dev_iommu` before `dev->iommu_group` is published;
/// the worker finds no group and backs off.
final class ProbeOrderTests: IOMMUTestCase {
    func testD2ReportBeforeTheGroupIsPublished() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, design: .devmutex)
            let dev = r.makeDevice(name: "dev0")
            let probed = r.hooks.arm(.probeAfterProbeDevice)
            let prober = TestThread(named: "prober") {
                do throws(IOMMUError) { try r.probeDevice(dev) } catch { XCTFail("\(error)") }
            }
            XCTAssertTrue(probed.waitUntilReached())
            XCTAssertNil(r.group(of: dev))
            let queued = Locked(false)
            let isr = TestThread(named: "isr", context: .hardirq) { queued.value = r.reportBroken(dev) }
            XCTAssertTrue(isr.join())
            XCTAssertTrue(queued.value, "the driver's master already points at dev_iommu")
            r.flushBrokenWork()
            XCTAssertEqual(r.counters.workerRevalidationFailed.load(ordering: .relaxed), 1)
            probed.release()
            XCTAssertTrue(prober.join())
            XCTAssertEqual(r.snapshot(of: dev)?.members.first?.blocked, GdevBlocked.none)
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
