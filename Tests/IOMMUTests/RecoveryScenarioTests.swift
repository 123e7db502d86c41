import IOMMU
import Lockdep
import RCU
import XCTest

/// S8 (empty-group assertion) and S9 (the recovery fence).
final class RecoveryScenarioTests: IOMMUTestCase {
    final class Owner {}

    // MARK: S8

    func testS8BuggyRemovingTheLastDeviceWhileOwnedWarns() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let owner = Owner()
            try r.claimDmaOwner(dev, owner: owner)
            try r.releaseDevice(dev)
            let warning = try XCTUnwrap(r.log.warnings.first)
            XCTAssertEqual(warning.function, "__iommu_group_empty_assert_owner_cnt")
            XCTAssertTrue(warning.message.contains("owner_cnt 1"), warning.message)
            expectNoLockdepReports()
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS8BuggyRemovingTheLastDeviceOfADMAUserWarns() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            try r.useDefaultDomain(dev)
            try r.releaseDevice(dev)
            XCTAssertEqual(r.log.warnings.map(\.function), ["__iommu_group_empty_assert_owner_cnt"])
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS8BuggyEmptyCheckOutsideTheMutexFailsTheLockdepAssertion() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, bugs: [.emptyCheckOutsideMutex])
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            try r.releaseDevice(dev)
            let report = try XCTUnwrap(lockdep.reports.first)
            XCTAssertEqual(report.kind, .assertionFailed)
            XCTAssertTrue(report.text.contains("group->mutex"), report.text)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS8FixedReleasingOwnershipFirstIsSilent() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let owner = Owner()
            try r.claimDmaOwner(dev, owner: owner)
            r.releaseDmaOwner(dev)
            try r.useDefaultDomain(dev)
            r.unuseDefaultDomain(dev)
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    // MARK: S9: the recovery fence

    func testS9AttachDuringResetIsBusy() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let group = try XCTUnwrap(r.group(of: dev))
            let user = Domain(name: "vfio")
            try r.resetPrepare(dev)
            XCTAssertThrowsError(try r.attachGroup(user, to: group)) { XCTAssertEqual($0 as? IOMMUError, .busy) }
            XCTAssertThrowsError(try r.attachPasid(user, to: dev, pasid: 1)) { XCTAssertEqual($0 as? IOMMUError, .busy) }
            let s = r.snapshot(group)
            XCTAssertEqual(s.recoveryCount, 1)
            XCTAssertEqual(s.members.first?.blocked, .reset)
            XCTAssertTrue(s.members.first?.attachedDomain === s.blockingDomain)
            XCTAssertTrue(r.checkInvariants().isEmpty)
            r.resetDone(dev)
            try r.attachGroup(user, to: group)
            XCTAssertTrue(r.snapshot(group).members.first?.attachedDomain === user)
            r.detachGroup(user, from: group)
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS9NofailReleaseDuringResetThenDoneReattachesTheNewDomain() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let group = try XCTUnwrap(r.group(of: dev))
            let owner = Owner()
            try r.claimDmaOwner(group, owner: owner)
            try r.resetPrepare(dev)
            r.releaseDmaOwner(group)                      // MUST_SUCCEED switch to the default domain
            var s = r.snapshot(group)
            XCTAssertTrue(s.domain === s.defaultDomain)
            XCTAssertTrue(s.members.first?.attachedDomain === s.blockingDomain, "blocked device stays blocked")
            r.resetDone(dev)
            s = r.snapshot(group)
            XCTAssertTrue(s.members.first?.attachedDomain === s.defaultDomain)
            XCTAssertEqual(s.recoveryCount, 0)
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS9NestedResetRestoresOnlyAtDepthZero() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            try r.resetPrepare(dev)
            try r.resetPrepare(dev)
            r.resetDone(dev)
            XCTAssertEqual(r.snapshot(of: dev)?.members.first?.blocked, .reset)
            XCTAssertEqual(r.snapshot(of: dev)?.members.first?.resetDepth, 1)
            XCTAssertEqual(r.snapshot(of: dev)?.recoveryCount, 1)
            r.resetDone(dev)
            XCTAssertEqual(r.snapshot(of: dev)?.members.first?.blocked, GdevBlocked.none)
            XCTAssertEqual(r.snapshot(of: dev)?.recoveryCount, 0)
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS9UnbalancedDoneWarnsAndChangesNothing() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            r.resetDone(dev)
            XCTAssertEqual(r.log.warnings.map(\.function), ["pci_dev_reset_iommu_done"])
            XCTAssertEqual(r.snapshot(of: dev)?.recoveryCount, 0)
            XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty)
            try r.releaseDevice(dev)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS9BrokenThenFailedResetStaysBlocked() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let isr = TestThread(named: "isr", context: .hardirq) { r.reportBroken(dev) }
            XCTAssertTrue(isr.join())
            r.flushBrokenWork()
            XCTAssertEqual(r.snapshot(of: dev)?.members.first?.blocked, .broken)
            try r.resetPrepare(dev)
            r.resetDone(dev, succeeded: false)
            var s = try XCTUnwrap(r.snapshot(of: dev))
            XCTAssertEqual(s.members.first?.blocked, .broken)
            XCTAssertEqual(s.recoveryCount, 1)
            XCTAssertTrue(r.checkInvariants().isEmpty)
            try r.resetPrepare(dev)
            r.resetDone(dev)
            s = try XCTUnwrap(r.snapshot(of: dev))
            XCTAssertEqual(s.members.first?.blocked, GdevBlocked.none)
            XCTAssertEqual(s.recoveryCount, 0)
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS9BuggyNoRecoveryFenceLetsAttachThroughAndBreaksI5() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, bugs: [.noRecoveryFence])
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let group = try XCTUnwrap(r.group(of: dev))
            try r.resetPrepare(dev)
            XCTAssertNoThrow(try r.attachGroup(Domain(name: "vfio"), to: group))
            let violations = r.checkInvariants()
            XCTAssertTrue(violations.contains { $0.invariant == .i5 }, "\(violations)")
            r.resetDone(dev)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
