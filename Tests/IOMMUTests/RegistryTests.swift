import IOMMU
import Lockdep
import RCU
import XCTest

/// The registry's ordinary behaviour, bad input, and the three broken-device designs.
final class RegistryTests: IOMMUTestCase {
    final class Owner {}

    func testProbeGroupsByTagAndReferenceCounts() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let a = r.makeDevice(name: "devA", groupTag: "bridge")
            let b = r.makeDevice(name: "devB", groupTag: "bridge")
            let c = r.makeDevice(name: "devC")
            for d in [a, b, c] { try r.probeDevice(d) }
            try r.probeDevice(a)   // already probed: nothing happens
            let g = try XCTUnwrap(r.group(of: a))
            XCTAssertTrue(r.group(of: b) === g)
            XCTAssertFalse(r.group(of: c) === g)
            XCTAssertEqual(r.snapshot(g).refCount, 2)
            XCTAssertEqual(r.snapshot(g).members.map(\.device.name), ["devA", "devB"])
            XCTAssertTrue(r.snapshot(g).domain === r.snapshot(g).defaultDomain)
            let ref = try XCTUnwrap(r.groupGet(a))
            XCTAssertEqual(r.snapshot(g).refCount, 3)
            XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty)
            try r.releaseDevice(a)
            try r.releaseDevice(b)
            XCTAssertEqual(g.life.state, .live, "iommu_group_get's reference keeps it")
            XCTAssertNil(r.snapshot(g).defaultDomain, "the last deinit freed the domains")
            r.groupPut(ref)
            XCTAssertEqual(g.life.state, .retired)
            rcuBarrier()
            XCTAssertEqual(g.life.state, .freed)
            try r.releaseDevice(c)
            rcuBarrier()
            XCTAssertEqual(r.counters.groupsAllocated.load(ordering: .relaxed), 2)
            XCTAssertEqual(r.counters.groupsFreed.load(ordering: .relaxed), 2)
            XCTAssertTrue(r.groups.isEmpty)
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    /// The checker takes one group mutex at a time: many groups stay within Lockdep's depth.
    func testInvariantCheckOverManyGroups() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let devices = (0..<80).map { r.makeDevice(name: "dev\($0)") }
            for d in devices { try r.probeDevice(d) }
            XCTAssertEqual(r.groups.count, 80)
            XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty)
            for d in devices { try r.releaseDevice(d) }
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testAddDeviceWithoutDriverState() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let group = r.allocGroup()
            let dev = r.makeDevice(name: "noiommu0")
            try r.addDevice(dev, to: group)
            XCTAssertThrowsError(try r.addDevice(dev, to: group)) { XCTAssertEqual($0 as? IOMMUError, .busy) }
            r.putAllocated(group)
            XCTAssertTrue(r.lookup(dev))
            XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty)
            try r.releaseDevice(dev)   // __iommu_group_remove_device: no dev_iommu, plain NULL store
            rcuBarrier()
            XCTAssertEqual(group.life.state, .freed)
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    // MARK: bad input

    func testBadInputReturnsTheKernelsErrorsAndKeepsStateIntact() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let never = r.makeDevice(name: "never")
            XCTAssertThrowsError(try r.releaseDevice(never)) { XCTAssertEqual($0 as? IOMMUError, .noDevice) }
            XCTAssertThrowsError(try r.claimDmaOwner(never, owner: Owner())) { XCTAssertEqual($0 as? IOMMUError, .noDevice) }
            XCTAssertNoThrow(try r.resetPrepare(never))   // no group: nothing to do, as the kernel returns 0

            let dev = r.makeDevice(name: "dev0")
            let peer = r.makeDevice(name: "dev1", groupTag: "pair")
            let peer2 = r.makeDevice(name: "dev2", groupTag: "pair")
            try r.probeDevice(dev)
            try r.probeDevice(peer)
            try r.probeDevice(peer2)
            try r.releaseDevice(dev)
            XCTAssertThrowsError(try r.releaseDevice(dev)) { XCTAssertEqual($0 as? IOMMUError, .noDevice) }

            let first = Owner(), second = Owner()
            try r.claimDmaOwner(peer, owner: first)
            try r.claimDmaOwner(peer2, owner: first)     // same owner nests
            XCTAssertThrowsError(try r.claimDmaOwner(peer, owner: second)) {
                XCTAssertEqual($0 as? IOMMUError, .permissionDenied)
            }
            let group = try XCTUnwrap(r.group(of: peer))
            XCTAssertThrowsError(try r.claimDmaOwner(group, owner: second)) {
                XCTAssertEqual($0 as? IOMMUError, .permissionDenied)
            }
            XCTAssertThrowsError(try r.useDefaultDomain(peer)) { XCTAssertEqual($0 as? IOMMUError, .busy) }
            XCTAssertThrowsError(try r.attachDevice(Domain(name: "u"), to: peer)) {
                XCTAssertEqual($0 as? IOMMUError, .invalidArgument)   // two devices in the group
            }
            r.releaseDmaOwner(peer)
            r.releaseDmaOwner(peer2)
            r.releaseDmaOwner(peer)                        // unbalanced: WARN
            XCTAssertEqual(r.log.warnings.map(\.function), ["iommu_device_release_dma_owner"])

            let user = Domain(name: "user")
            try r.attachGroup(user, to: group)
            XCTAssertThrowsError(try r.attachGroup(Domain(name: "other"), to: group)) {
                XCTAssertEqual($0 as? IOMMUError, .busy)
            }
            let failing = Domain(name: "failing")
            failing.failAttach.store(true, ordering: .relaxed)
            XCTAssertThrowsError(try r.replaceDomain(failing, in: group)) { XCTAssertEqual($0 as? IOMMUError, .attachFailed) }
            XCTAssertTrue(r.snapshot(group).members.allSatisfy { $0.attachedDomain === user }, "reverted")
            r.detachGroup(user, from: group)
            r.unuseDefaultDomain(peer)                     // unbalanced: WARN
            r.resetDone(peer)                              // unbalanced: WARN
            XCTAssertEqual(r.log.warnings.count, 3)
            XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty)
            try r.releaseDevice(peer)
            try r.releaseDevice(peer2)
            rcuBarrier()
            XCTAssertEqual(r.log.useAfterFreeTotal, 0)
            XCTAssertEqual(r.log.invariantViolationTotal, 0)
            expectNoLockdepReports()
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testFailedDriverProbeLeavesNoState() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            dev.failProbe.store(true, ordering: .relaxed)
            XCTAssertThrowsError(try r.probeDevice(dev)) { XCTAssertEqual($0 as? IOMMUError, .noDevice) }
            XCTAssertNil(r.group(of: dev))
            XCTAssertTrue(r.groups.isEmpty)
            XCTAssertThrowsError(try r.releaseDevice(dev)) { XCTAssertEqual($0 as? IOMMUError, .noDevice) }
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    // MARK: designs

    func testEachDesignQuarantinesAndRecovers() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            for design in BrokenDeviceDesign.allCases {
                Lockdep.resetForTesting()
                let r = makeRegistry(Flavor.self, design: design)
                let dev = r.makeDevice(name: "dev-\(design)")
                try r.probeDevice(dev)
                let isr = TestThread(named: "isr", context: .hardirq) { XCTAssertTrue(r.reportBroken(dev)) }
                XCTAssertTrue(isr.join())
                r.flushBrokenWork()
                let s = try XCTUnwrap(r.snapshot(of: dev))
                switch design {
                case .rcu, .devmutex:
                    XCTAssertEqual(s.members.first?.blocked, .broken, "\(design)")
                    XCTAssertTrue(s.members.first?.attachedDomain === s.blockingDomain)
                    XCTAssertEqual(s.recoveryCount, 1)
                    XCTAssertEqual(r.counters.quarantined.load(ordering: .relaxed), 1)
                case .driverOnly:
                    XCTAssertTrue(dev.atsBlocked.load(ordering: .relaxed))
                    XCTAssertEqual(s.members.first?.blocked, GdevBlocked.none)
                }
                XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty, "\(design)")
                try r.resetPrepare(dev)                    // the FLR
                r.resetDone(dev)
                XCTAssertEqual(r.snapshot(of: dev)?.recoveryCount, 0)
                XCTAssertFalse(dev.atsBlocked.load(ordering: .relaxed))
                try r.releaseDevice(dev)
                if design != .driverOnly { XCTAssertFalse(r.reportBroken(dev), "gone: the report is dropped") }
                rcuBarrier()
                expectClean(r)
            }
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    /// D2's lock order dev_iommu->lock -> group->mutex, and its teardown: disable_work_sync()
    /// before group->mutex, so a late report from the driver is refused.
    func testDevMutexDesignTeardownDisablesTheWork() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, design: .devmutex)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let worker = r.hooks.arm(.workerBeforeGroupMutex)
            let isr = TestThread(named: "isr", context: .hardirq) { r.reportBroken(dev) }
            XCTAssertTrue(isr.join())
            XCTAssertTrue(worker.waitUntilReached())      // holds dev_iommu->lock
            let remover = TestThread(named: "remover") { do { try r.releaseDevice(dev) } catch { XCTFail("\(error)") } }
            worker.release()                              // the remover waits in disable_work_sync() until here
            XCTAssertTrue(remover.join())
            XCTAssertEqual(r.counters.quarantined.load(ordering: .relaxed), 1)
            XCTAssertFalse(r.reportBroken(dev))
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testQuarantineCallback() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let seen = Locked<[String]>([])
            let r = makeRegistry(Flavor.self) { $0.onQuarantine = { seen.value.append($0.name) } }
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let isr = TestThread(named: "isr", context: .hardirq) { r.reportBroken(dev) }
            XCTAssertTrue(isr.join())
            r.flushBrokenWork()
            XCTAssertEqual(seen.value, ["dev0"])
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testBaselineReaderSynchronizations() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            for mode in [ReaderSynchronization.rwlock, .mutex] {
                let r = makeRegistry(Flavor.self) { $0.readerSynchronization = mode }
                let dev = r.makeDevice(name: "dev0")
                try r.probeDevice(dev)
                XCTAssertTrue(r.lookup(dev))
                try r.releaseDevice(dev)
                XCTAssertFalse(r.lookup(dev))
                expectClean(r)
            }
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testHooksAreInertWhenUnarmed() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let point = r.hooks.arm(.isrAfterDeref)
            point.release()                                // disarmed before anyone reached it
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            XCTAssertTrue(r.lookup(dev))
            XCTAssertEqual(point.reachedCount, 0)
            try r.releaseDevice(dev)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
