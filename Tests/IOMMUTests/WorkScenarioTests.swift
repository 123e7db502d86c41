import IOMMU
import Lockdep
import RCU
import XCTest

/// S4 and S5: the per-gdev broken work (design D1) against device removal.
final class WorkScenarioTests: IOMMUTestCase {
    /// Runs a broken report in an ISR thread and lets the worker quarantine the device.
    private func quarantine<Flavor>(_ r: Registry<Flavor>, _ dev: Device<Flavor>) {
        let isr = TestThread(named: "isr", context: .hardirq) { XCTAssertTrue(r.reportBroken(dev)) }
        XCTAssertTrue(isr.join())
        r.flushBrokenWork()
    }

    // MARK: S4: cancel_work_sync() under group->mutex (seed 001)

    /// The non-hanging order: the worker already ran (work -> group->mutex is known); the
    /// remover then cancels under the mutex. Nothing deadlocks, Lockdep reports the cycle.
    func testS4BuggyCancelUnderGroupMutexIsACycle() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, bugs: [.cancelUnderGroupMutex])
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            quarantine(r, dev)
            XCTAssertEqual(r.snapshot(of: dev)?.members.first?.blocked, .broken)
            expectNoLockdepReports()
            Lockdep.currentThreadName = "remover"
            try r.releaseDevice(dev)
            let report = try XCTUnwrap(lockdep.reports.first { $0.kind == .circularDependency })
            XCTAssertEqual(Set(report.classes), ["group->mutex", "work:gdev_broken"])
            XCTAssertEqual(report.lock?.name, "work:gdev_broken")
            XCTAssertEqual(report.heldLocks.map(\.name), ["group->mutex"])
            XCTAssertEqual(report.chain.first?.from, "work:gdev_broken")
            XCTAssertEqual(report.chain.first?.to, "group->mutex")
            XCTAssertTrue(report.text.contains("possible circular locking dependency detected"), report.text)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    /// The forced order: the worker is blocked on group->mutex while the remover, holding it,
    /// waits in cancel_work_sync() for the worker. A real deadlock: Lockdep reports it as it
    /// forms, and a watchdog (bounded join) detects the hang instead of the test hanging.
    func testS4BuggyForcedOrderDeadlocksAndIsReported() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            // The threads stay blocked forever: this registry is never shut down.
            let r = makeRegistry(Flavor.self, bugs: [.cancelUnderGroupMutex], shutdownAfterTest: false)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let worker = r.hooks.arm(.workerBeforeGroupMutex)
            let isr = TestThread(named: "isr", context: .hardirq) { r.reportBroken(dev) }
            XCTAssertTrue(isr.join())
            XCTAssertTrue(worker.waitUntilReached())        // the worker runs, holding work:gdev_broken
            let cancel = r.hooks.arm(.removeBeforeCancel)
            let remover = TestThread(named: "remover") { try? r.releaseDevice(dev) }
            XCTAssertTrue(cancel.waitUntilReached())        // the remover holds group->mutex
            worker.release()                                // the worker blocks on group->mutex
            cancel.release()                                // the remover waits for the worker
            let report = try XCTUnwrap(lockdep.waitFor(.circularDependency))
            XCTAssertEqual(Set(report.classes), ["group->mutex", "work:gdev_broken"])
            XCTAssertFalse(remover.join(timeout: 1), "watchdog: the remover must be deadlocked")
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    /// Fixed: unlink and assert under the mutex, unlock, assert not held, disable the work,
    /// free, put. A worker that was already running revalidates under the mutex and backs off.
    func testS4FixedWorkerRevalidatesAfterRemoval() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            quarantine(r, dev)                               // records work -> group->mutex
            try r.resetPrepare(dev)
            r.resetDone(dev)                                 // FLR recovers the device
            XCTAssertEqual(r.snapshot(of: dev)?.members.first?.blocked, GdevBlocked.none)

            let worker = r.hooks.arm(.workerBeforeGroupMutex)
            let isr = TestThread(named: "isr", context: .hardirq) { r.reportBroken(dev) }
            XCTAssertTrue(isr.join())
            XCTAssertTrue(worker.waitUntilReached())
            let unlocked = r.hooks.arm(.removeAfterUnlock)
            let remover = TestThread(named: "remover") { do { try r.releaseDevice(dev) } catch { XCTFail("\(error)") } }
            XCTAssertTrue(unlocked.waitUntilReached())       // unlinked, mutex dropped, not yet disabled
            worker.release()
            r.flushBrokenWork()                              // the worker took the mutex and backed off
            XCTAssertEqual(r.counters.workerRevalidationFailed.load(ordering: .relaxed), 1)
            unlocked.release()
            XCTAssertTrue(remover.join())
            rcuBarrier()
            expectClean(r)
            XCTAssertEqual(r.counters.quarantined.load(ordering: .relaxed), 1)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    /// Seed 001 also applies to __iommu_probe_device's error path: the gdev is freed (and its
    /// work disabled) after the unlock, and everything is unwound.
    func testS4FixedProbeErrorPathUnwinds() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let a = r.makeDevice(name: "devA", groupTag: "bridge")
            let b = r.makeDevice(name: "devB", groupTag: "bridge")
            try r.probeDevice(a)
            b.failAttach.store(true, ordering: .relaxed)
            XCTAssertThrowsError(try r.probeDevice(b)) { XCTAssertEqual($0 as? IOMMUError, .attachFailed) }
            XCTAssertNil(r.group(of: b))
            XCTAssertEqual(r.snapshot(of: a)?.members.map(\.device.name), ["devA"])
            XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty)
            b.failAttach.store(false, ordering: .relaxed)
            try r.probeDevice(b)
            XCTAssertEqual(r.snapshot(of: a)?.members.count, 2)
            try r.releaseDevice(a)
            try r.releaseDevice(b)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    // MARK: S5: queue after cancel (design D1)

    private func raceLateISRAgainstRemoval<Flavor>(_ r: Registry<Flavor>, _ dev: Device<Flavor>) throws -> (queued: Bool, PausePoint) {
        let found = r.hooks.arm(.isrFoundGdev)
        let worker = r.hooks.arm(.workerStart)
        let queued = Locked(false)
        let isr = TestThread(named: "isr", context: .hardirq) { queued.value = r.reportBroken(dev) }
        XCTAssertTrue(found.waitUntilReached())          // the ISR stands on the gdev
        try r.releaseDevice(dev)                         // list_del_rcu, unlock, cancel/disable, kfree_rcu
        found.release()
        XCTAssertTrue(isr.join())
        return (queued.value, worker)
    }

    func testS5BuggyWorkQueuedAfterCancelRunsOnAFreedGroupDevice() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, bugs: [.queueAfterCancel])
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let (queued, worker) = try raceLateISRAgainstRemoval(r, dev)
            XCTAssertTrue(queued, "cancel_work_sync found nothing pending, so the late queue succeeds")
            XCTAssertTrue(worker.waitUntilReached())
            rcuBarrier()                                     // the grace period ended: the gdev is freed
            worker.release()
            r.flushBrokenWork()
            let uaf = try XCTUnwrap(r.log.useAfterFreeReports.first)
            XCTAssertEqual(uaf.object, "GroupDevice(dev0)")
            XCTAssertEqual(uaf.accessor, "iommu_group_broken_worker")
            XCTAssertEqual(uaf.freedAt, "__iommu_group_free_device")
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS5FixedDisableWorkMakesTheLateQueueFail() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let (queued, worker) = try raceLateISRAgainstRemoval(r, dev)
            XCTAssertFalse(queued)
            worker.release()
            r.flushBrokenWork()
            rcuBarrier()
            expectClean(r)
            XCTAssertEqual(r.counters.brokenDropped.load(ordering: .relaxed), 1)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS5FixedSynchronizeBeforeCancel() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self) { $0.teardownFence = .synchronizeRCU }
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let found = r.hooks.arm(.isrFoundGdev)
            let isr = TestThread(named: "isr", context: .hardirq) { r.reportBroken(dev) }
            XCTAssertTrue(found.waitUntilReached())
            let remover = TestThread(named: "remover") { do { try r.releaseDevice(dev) } catch { XCTFail("\(error)") } }
            // The remover waits in synchronize_rcu() for the ISR's section; let the ISR queue.
            found.release()
            XCTAssertTrue(isr.join())
            XCTAssertTrue(remover.join())                    // cancel_work_sync() after the grace period
            r.flushBrokenWork()
            rcuBarrier()
            XCTAssertEqual(r.log.useAfterFreeTotal, 0)
            XCTAssertEqual(r.log.warningTotal, 0)
            XCTAssertTrue(lockdep.reports.isEmpty, lockdep.reports.map(\.text).joined(separator: "\n"))
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
