import IOMMU
import Lockdep
import RCU
import XCTest

/// Divergence 11 (issue 16): the reset hooks WARN as the kernel's do: `WARN_ON(!gdev)` in
/// prepare and done, `WARN_ON(!blocking_domain)` and `WARN_ON(recovery_cnt == 0)` in done.
final class ResetWarningTests: IOMMUTestCase {
    func testPrepareOnADeviceNotYetListedWarns() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            let published = r.hooks.arm(.probeAfterPublish)
            let prober = TestThread(named: "prober") {
                do throws(IOMMUError) { try r.probeDevice(dev) } catch { XCTFail("\(error)") }
            }
            XCTAssertTrue(published.waitUntilReached())       // dev->iommu_group set, gdev not listed
            XCTAssertThrowsError(try r.resetPrepare(dev)) { XCTAssertEqual($0 as? IOMMUError, .noDevice) }
            XCTAssertEqual(r.log.warnings.map(\.function), ["pci_dev_reset_iommu_prepare"])
            published.release()
            XCTAssertTrue(prober.join())
            try r.releaseDevice(dev)
            rcuBarrier()
            expectNoLockdepReports()
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testDoneWithRecoveryCountZeroWarns() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, bugs: [.noRecoveryFence])
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            try r.resetPrepare(dev)                     // the bug: recovery_cnt not incremented
            r.resetDone(dev)
            XCTAssertEqual(r.log.warnings.map(\.function), ["pci_dev_reset_iommu_done"])
            XCTAssertTrue(r.log.warnings.first?.message.contains("recovery_cnt") ?? false, "\(r.log.warnings)")
            XCTAssertEqual(r.snapshot(of: dev)?.recoveryCount, 0, "no underflow")
            try r.releaseDevice(dev)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
