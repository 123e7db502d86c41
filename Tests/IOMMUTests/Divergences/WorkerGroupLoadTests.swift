import IOMMU
import Lockdep
import RCU
import XCTest

/// Divergence 3 (issue 16): `struct group_device` has no group pointer; D1's worker reads
/// `dev->iommu_group`, which `iommu_deinit_device` clears under the mutex before the remover
/// disables the work (after the unlock). The worker must accept NULL.
final class WorkerGroupLoadTests: IOMMUTestCase {
    func testD1WorkerFindsNullGroupAfterDeinitAndBacksOff() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, design: .rcu)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let load = r.hooks.arm(.workerBeforeGroupLoad)
            let isr = TestThread(named: "isr", context: .hardirq) { XCTAssertTrue(r.reportBroken(dev)) }
            XCTAssertTrue(isr.join())
            XCTAssertTrue(load.waitUntilReached())            // the worker runs; dev->iommu_group not read yet
            let unlocked = r.hooks.arm(.removeAfterUnlock)
            let remover = TestThread(named: "remover") {
                do throws(IOMMUError) { try r.releaseDevice(dev) } catch { XCTFail("\(error)") }
            }
            XCTAssertTrue(unlocked.waitUntilReached())        // deinit cleared dev->iommu_group; work not disabled
            XCTAssertNil(r.group(of: dev))
            load.release()
            r.flushBrokenWork()
            XCTAssertEqual(r.counters.workerFoundNoGroup.load(ordering: .relaxed), 1)
            XCTAssertEqual(r.counters.quarantined.load(ordering: .relaxed), 0)
            unlocked.release()
            XCTAssertTrue(remover.join())
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    /// The worker loaded the group before the remover ran: it stays allocated (the remover puts
    /// its reference only after disable_work_sync), and the worker revalidates under its mutex.
    func testD1WorkerWithAStaleGroupRevalidatesUnderTheMutex() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, design: .rcu)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let beforeMutex = r.hooks.arm(.workerBeforeGroupMutex)
            let isr = TestThread(named: "isr", context: .hardirq) { XCTAssertTrue(r.reportBroken(dev)) }
            XCTAssertTrue(isr.join())
            XCTAssertTrue(beforeMutex.waitUntilReached())
            let unlocked = r.hooks.arm(.removeAfterUnlock)
            let remover = TestThread(named: "remover") {
                do throws(IOMMUError) { try r.releaseDevice(dev) } catch { XCTFail("\(error)") }
            }
            XCTAssertTrue(unlocked.waitUntilReached())
            beforeMutex.release()
            r.flushBrokenWork()
            XCTAssertEqual(r.counters.workerFoundNoGroup.load(ordering: .relaxed), 0)
            XCTAssertEqual(r.counters.workerRevalidationFailed.load(ordering: .relaxed), 1)
            unlocked.release()
            XCTAssertTrue(remover.join())
            rcuBarrier()
            XCTAssertEqual(r.counters.groupsFreed.load(ordering: .relaxed), 1)
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
