import IOMMU
import Lockdep
import RCU
import XCTest

/// Divergence 6 (issue 16): a failed first attach of a new group's default domain WARNs in
/// `iommu_setup_default_domain` (MUST_SUCCEED sets `group->domain` anyway), not in
/// `__iommu_group_empty_assert_owner_cnt`, and the probe is unwound.
final class DefaultDomainSetupTests: IOMMUTestCase {
    func testFirstProbeAttachFailureWarnsInSetupDefaultDomain() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            dev.failAttach.store(true, ordering: .relaxed)
            XCTAssertThrowsError(try r.probeDevice(dev)) { XCTAssertEqual($0 as? IOMMUError, .attachFailed) }
            XCTAssertEqual(r.log.warnings.map(\.function), ["iommu_setup_default_domain"])
            XCTAssertNil(r.group(of: dev))
            rcuBarrier()
            XCTAssertEqual(r.counters.groupsFreed.load(ordering: .relaxed), 1, "the group and its domains are gone")
            dev.failAttach.store(false, ordering: .relaxed)
            try r.probeDevice(dev)
            XCTAssertNotNil(r.snapshot(of: dev)?.defaultDomain)
            try r.releaseDevice(dev)
            rcuBarrier()
            expectNoLockdepReports()
            XCTAssertEqual(r.log.useAfterFreeTotal, 0)
            XCTAssertEqual(r.log.invariantViolationTotal, 0)
            XCTAssertEqual(r.log.warningTotal, 1)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
