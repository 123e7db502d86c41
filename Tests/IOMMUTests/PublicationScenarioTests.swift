import IOMMU
import Lockdep
import RCU
import XCTest

/// S1-S3: what RCU publication and deferred freeing protect an ISR reader from.
final class PublicationScenarioTests: IOMMUTestCase {
    // MARK: S1: group freed under an ISR reader (seed 000)

    func testS1BuggyPlainFreeGroupIsAUseAfterFree() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, bugs: [.plainFreeGroup])
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let group = try XCTUnwrap(r.group(of: dev))
            let parked = r.hooks.arm(.isrAfterDeref)
            let isr = TestThread(named: "isr", context: .hardirq) { r.reportBroken(dev) }
            XCTAssertTrue(parked.waitUntilReached())
            try r.releaseDevice(dev)   // last device: iommu_group_put -> release -> kfree at once
            XCTAssertEqual(group.life.state, .freed)
            parked.release()
            XCTAssertTrue(isr.join())
            let uaf = try XCTUnwrap(r.log.useAfterFreeReports.first)
            XCTAssertEqual(uaf.object, "IommuGroup#\(group.id)")
            XCTAssertEqual(uaf.freedAt, "iommu_group_release")
            XCTAssertEqual(uaf.accessor, "IommuGroup.devices")
            XCTAssertEqual(uaf.thread, "isr")
            XCTAssertTrue(uaf.description.contains("use-after-free"))
            expectNoLockdepReports()
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS1FixedGroupOutlivesTheReader() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let group = try XCTUnwrap(r.group(of: dev))
            let parked = r.hooks.arm(.isrAfterDeref)
            let result = Locked<Bool?>(nil)
            let isr = TestThread(named: "isr", context: .hardirq) { result.value = r.reportBroken(dev) }
            XCTAssertTrue(parked.waitUntilReached())
            try r.releaseDevice(dev)
            // Released and unpublished, but not freed: the reader's section is still open.
            XCTAssertEqual(group.life.state, .retired)
            XCTAssertNil(r.group(of: dev))
            parked.release()
            XCTAssertTrue(isr.join())
            XCTAssertEqual(result.value, false, "the gdev was unlinked: nothing to quarantine")
            rcuBarrier()
            XCTAssertEqual(group.life.state, .freed)
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    // MARK: S2: group device list not RCU-safe (pre-v3)

    func testS2BuggyListDelAndImmediateFreeIsAUseAfterFree() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, design: .driverOnly, bugs: [.nonRCUDeviceList])
            let a = r.makeDevice(name: "devA", groupTag: "bridge")
            let b = r.makeDevice(name: "devB", groupTag: "bridge")
            try r.probeDevice(a)
            try r.probeDevice(b)
            let walking = r.hooks.arm(.isrVisitNode)   // the ISR stands on devA's node
            let isr = TestThread(named: "isr", context: .hardirq) { r.lookup(b) }
            XCTAssertTrue(walking.waitUntilReached())
            try r.releaseDevice(a)                      // list_del + kfree under the mutex
            walking.release()
            XCTAssertTrue(isr.join())
            let uaf = try XCTUnwrap(r.log.useAfterFreeReports.first)
            XCTAssertEqual(uaf.object, "GroupDevice(devA)")
            XCTAssertEqual(uaf.accessor, "GroupDevice.dev")
            XCTAssertEqual(uaf.freedAt, "__iommu_group_free_device")
            try r.releaseDevice(b)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS2FixedReaderSeesLiveGroupDevicesOnly() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, design: .driverOnly)
            let a = r.makeDevice(name: "devA", groupTag: "bridge")
            let b = r.makeDevice(name: "devB", groupTag: "bridge")
            try r.probeDevice(a)
            try r.probeDevice(b)
            let walking = r.hooks.arm(.isrVisitNode)
            let found = Locked(false)
            let isr = TestThread(named: "isr", context: .hardirq) { found.value = r.lookup(b) }
            XCTAssertTrue(walking.waitUntilReached())
            try r.releaseDevice(a)                      // list_del_rcu + kfree_rcu
            walking.release()
            XCTAssertTrue(isr.join())
            XCTAssertTrue(found.value, "devB stayed in the list for the whole walk")
            XCTAssertFalse(r.lookup(a))
            try r.releaseDevice(b)
            rcuBarrier()
            expectClean(r)
            XCTAssertEqual(r.counters.groupDevicesFreed.load(ordering: .relaxed), 2)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    // MARK: S3: publication before initialisation

    func testS3BuggyReaderObservesAHalfBuiltGroup() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, bugs: [.unpublishedStore])
            let dev = r.makeDevice(name: "dev0")
            let published = r.hooks.arm(.probeAfterPublish)
            let prober = TestThread(named: "probe") { try? r.probeDevice(dev) }
            XCTAssertTrue(published.waitUntilReached())
            let isr = TestThread(named: "isr", context: .hardirq) { r.reportBroken(dev) }
            XCTAssertTrue(isr.join())
            published.release()
            XCTAssertTrue(prober.join())
            let v = try XCTUnwrap(r.log.invariantViolations.first)
            XCTAssertEqual(v.invariant, .i3)
            XCTAssertTrue(v.message.contains("before it was initialised"), v.message)
            try r.releaseDevice(dev)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS3FixedReaderSeesAnInitialisedGroupOrNothing() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            let published = r.hooks.arm(.probeAfterPublish)
            let prober = TestThread(named: "probe") { try? r.probeDevice(dev) }
            XCTAssertTrue(published.waitUntilReached())
            let queued = Locked<Bool?>(nil)
            let isr = TestThread(named: "isr", context: .hardirq) { queued.value = r.reportBroken(dev) }
            XCTAssertTrue(isr.join())
            XCTAssertEqual(queued.value, false, "group published, gdev not yet on the list")
            published.release()
            XCTAssertTrue(prober.join())
            XCTAssertTrue(r.lookup(dev))
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
