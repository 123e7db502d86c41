import IOMMU
import Lockdep
import RCU
import XCTest

/// `really_probe()` sets `dev->driver` before the driver's probe and clears it again when the
/// probe fails (`device_unbind_cleanup`). `iommu_init_device` runs the bus's `dma_configure()`
/// (dropping the probe lock) only for a device without a bound driver, so a failed driver probe
/// must not leave the device looking bound.
final class DriverProbeFailureTests: IOMMUTestCase {
    func testFailedDriverProbeLeavesNoDriverBound() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let fw = r.makeDevice(name: "platform:dma0")
            fw.firmwareDescribed.store(true, ordering: .relaxed)
            XCTAssertThrowsError(try r.driverProbe(fw) { () throws(IOMMUError) in throw IOMMUError.noDevice })
            let dropped = r.hooks.arm(.probeInDmaConfigure)
            let prober = TestThread(named: "bus-notifier") { try? r.probeDevice(fw) }
            XCTAssertTrue(dropped.waitUntilReached(timeout: .seconds(5)),
                          "no driver is bound after the failed probe: dma_configure runs with the probe lock dropped")
            dropped.release()
            XCTAssertTrue(prober.join())
            XCTAssertNotNil(r.group(of: fw))
            try r.releaseDevice(fw)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
