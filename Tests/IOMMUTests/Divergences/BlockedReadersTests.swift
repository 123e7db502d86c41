import IOMMU
import Lockdep
import RCU
import XCTest

/// Divergence 12 (issue 16), the parts fixed: the kernel's other readers of `gdev->blocked`
/// (`iommu_deferred_attach`, `iommu_driver_get_domain_for_dev`), and `bus_iommu_probe` probing
/// the IOMMU's own device like any other (its driver refuses it with `-ENODEV`).
final class BlockedReadersTests: IOMMUTestCase {
    func testDeferredAttachIsBusyWhileBlocked() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "kdump0")
            dev.attachDeferredByDriver.store(true, ordering: .relaxed)
            try r.probeDevice(dev)
            let dma = try XCTUnwrap(r.snapshot(of: dev)?.defaultDomain)
            try r.resetPrepare(dev)
            XCTAssertThrowsError(try r.deferredAttach(dev, to: dma)) { XCTAssertEqual($0 as? IOMMUError, .busy) }
            r.resetDone(dev)
            XCTAssertNoThrow(try r.deferredAttach(dev, to: dma))
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testDriverSeesTheBlockingDomainWhileBlocked() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let snap = try XCTUnwrap(r.snapshot(of: dev))
            XCTAssertTrue(r.driverDomain(for: dev) === snap.defaultDomain)
            try r.resetPrepare(dev)
            XCTAssertEqual(r.driverDomain(for: dev)?.type, .blocked)
            r.resetDone(dev)
            XCTAssertTrue(r.driverDomain(for: dev) === snap.defaultDomain)
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testRegisterIommuProbesItsOwnDeviceWhichTheDriverRefuses() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let hwdev = r.makeDevice(name: "smmu@15000000")
            let dev = r.makeDevice(name: "dev0")
            let failures = try r.driverProbe(hwdev) { r.registerIommu(hwdev: hwdev) }
            XCTAssertTrue(failures.isEmpty, "-ENODEV is not a failure")
            XCTAssertNil(r.group(of: hwdev))
            XCTAssertThrowsError(try r.probeDevice(hwdev)) { XCTAssertEqual($0 as? IOMMUError, .noDevice) }
            XCTAssertNotNil(r.group(of: dev))
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
