import IOMMU
import Lockdep
import RCU
import XCTest

/// Divergence 8 (issue 16): `__iommu_group_set_domain_internal` returns 0 when the domain is
/// already `new` before it looks at `recovery_cnt`, and a NULL `new` WARNs with `-EINVAL`.
final class SetDomainOrderTests: IOMMUTestCase {
    func testSameDomainDuringRecoveryIsNotBusy() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let group = try XCTUnwrap(r.group(of: dev))
            let user = Domain(name: "user")
            try r.attachGroup(user, to: group)
            try r.resetPrepare(dev)
            XCTAssertNoThrow(try r.replaceDomain(user, in: group), "domain == new returns 0 first")
            XCTAssertThrowsError(try r.replaceDomain(Domain(name: "other"), in: group)) {
                XCTAssertEqual($0 as? IOMMUError, .busy)
            }
            r.resetDone(dev)
            r.detachGroup(user, from: group)
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    /// A group without a default domain (devices added with `iommu_group_add_device`): releasing
    /// DMA ownership asks for a NULL domain, which WARNs and leaves the blocking domain attached.
    func testNullDomainWarnsAndChangesNothing() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let g = r.allocGroup()
            let dev = r.makeDevice(name: "noiommu0")
            try r.addDevice(dev, to: g)
            let owner = Domain(name: "owner token")
            try r.claimDmaOwner(g, owner: owner)
            XCTAssertEqual(r.snapshot(g).domain?.type, .blocked)
            r.releaseDmaOwner(g)
            XCTAssertEqual(r.log.warnings.map(\.function),
                           ["__iommu_group_set_domain_internal", "__iommu_group_set_domain_nofail"])
            XCTAssertEqual(r.snapshot(g).domain?.type, .blocked, "a NULL domain is refused")
            expectNoLockdepReports()
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
