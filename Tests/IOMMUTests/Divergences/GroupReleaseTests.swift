import IOMMU
import Lockdep
import RCU
import XCTest

/// Divergence 4 (issue 16): the kobject release `iommu_group_release` takes no lock. Taking
/// `group->mutex` there put a false `held lock -> group->mutex` edge at every put site and an AA
/// when the last put runs under the same group's mutex.
final class GroupReleaseTests: IOMMUTestCase {
    func testLastPutUnderTheGroupsOwnMutexIsNotAnAA() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let g = r.allocGroup()
            let putter = TestThread(named: "putter") {
                g.mutex.lock()
                r.putAllocated(g)                    // the last reference
                g.mutex.unlock()
            }
            XCTAssertTrue(putter.join(timeout: 10), "the release must not take group->mutex again")
            expectNoLockdepReports()
            rcuBarrier()
            XCTAssertEqual(r.counters.groupsFreed.load(ordering: .relaxed), 1)
            XCTAssertEqual(r.log.useAfterFreeTotal, 0)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testPutUnderAnotherLockAddsNoEdgeToGroupMutex() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let outer = CheckedMutex(class: LockClass.dynamic("driver_table_lock"))
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let first = try XCTUnwrap(r.groupGet(dev))
            try r.releaseDevice(dev)                   // our reference is now the last one
            outer.withLock { r.groupPut(first) }       // old release: driver_table_lock -> group->mutex
            try r.probeDevice(dev)                     // a new group, the same lock class
            let second = try XCTUnwrap(r.group(of: dev))
            second.mutex.withLock { outer.withLock {} }   // group->mutex -> driver_table_lock
            expectNoLockdepReports()
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
