import Foundation
import IOMMU
import Lockdep
import RCU
import XCTest

/// The IOMMU usage example (an ISR reports a device broken; a reset recovers it), with its
/// counters checked (the README shows the same flow; scripts/check-readme-client.sh runs that one).
final class IOMMUUsageExampleTests: IOMMUTestCase {
    func testUsageExample() throws {
        let registry = Registry(configuration: .init(design: .rcu))
        defer { registry.shutdown() }
        let dev = registry.makeDevice(name: "0000:00:01.0", groupTag: "bridge0")
        try registry.probeDevice(dev)
        Lockdep.withContext(.hardirq) { _ = registry.reportBroken(dev) }   // an "ISR"
        registry.flushBrokenWork()                                          // quarantined
        XCTAssertEqual(registry.counters.quarantined.load(ordering: .relaxed), 1)
        try registry.resetPrepare(dev); registry.resetDone(dev)             // the FLR recovers it
        try registry.releaseDevice(dev)
        expectClean(registry)
    }
}

/// Runs `body` on a new thread in `context`; returns a function that waits for it to finish
/// (the helper of the IOMMU article's "Reproducing the races").
private func start(in context: LockdepContext, _ body: @escaping @Sendable () -> Void) -> () -> Void {
    let done = DispatchSemaphore(value: 0)
    Thread { Lockdep.withContext(context, body); done.signal() }.start()
    return { done.wait() }
}

/// The IOMMU article's race recipes (S1, S2, S3, S5) and the ``Hooks`` example, as written there
/// (with `precondition` / `print` turned into assertions), each also run without its knob.
final class RaceRecipeExampleTests: IOMMUTestCase {
    func testS1Recipe() throws {
        for bugs in [RegistryBugs.plainFreeGroup, []] {
            let registry = Registry(configuration: .init(design: .rcu, bugs: bugs))
            let dev = registry.makeDevice(name: "dev0")
            try registry.probeDevice(dev)
            let parked = registry.hooks.arm(.isrAfterDeref)
            let isr = start(in: .hardirq) { _ = registry.reportBroken(dev) }
            XCTAssertTrue(parked.waitUntilReached())
            try registry.releaseDevice(dev)                  // last device: the group is freed at once
            parked.release()
            isr()
            XCTAssertEqual(registry.log.useAfterFreeReports.map(\.freedAt), bugs.isEmpty ? [] : ["iommu_group_release"])
            registry.shutdown()
        }
        expectNoLockdepReports()
    }

    func testS2Recipe() throws {
        for bugs in [RegistryBugs.nonRCUDeviceList, []] {
            let registry = Registry(configuration: .init(design: .driverOnly, bugs: bugs))
            let a = registry.makeDevice(name: "devA", groupTag: "bridge")
            let b = registry.makeDevice(name: "devB", groupTag: "bridge")
            try registry.probeDevice(a)
            try registry.probeDevice(b)
            let walking = registry.hooks.arm(.isrVisitNode)  // the ISR, looking for devB, stands on devA
            let isr = start(in: .hardirq) { _ = registry.lookup(b) }
            XCTAssertTrue(walking.waitUntilReached())
            try registry.releaseDevice(a)                    // list_del and an immediate free
            walking.release()
            isr()
            XCTAssertEqual(registry.log.useAfterFreeReports.map(\.object), bugs.isEmpty ? [] : ["GroupDevice(devA)"])
            registry.shutdown()
        }
        expectNoLockdepReports()
    }

    func testS3Recipe() throws {
        for bugs in [RegistryBugs.unpublishedStore, []] {
            let registry = Registry(configuration: .init(design: .rcu, bugs: bugs))
            let dev = registry.makeDevice(name: "dev0")
            let published = registry.hooks.arm(.probeAfterPublish)
            let prober = start(in: .process) { try? registry.probeDevice(dev) }
            XCTAssertTrue(published.waitUntilReached())
            start(in: .hardirq) { _ = registry.reportBroken(dev) }()   // run an ISR to completion
            published.release()
            prober()
            XCTAssertEqual(registry.log.invariantViolations.map(\.invariant), bugs.isEmpty ? [] : [.i3])
            registry.shutdown()
        }
        expectNoLockdepReports()
    }

    func testS5Recipe() throws {
        for bugs in [RegistryBugs.queueAfterCancel, []] {
            let registry = Registry(configuration: .init(design: .rcu, bugs: bugs))
            let dev = registry.makeDevice(name: "dev0")
            try registry.probeDevice(dev)
            let found = registry.hooks.arm(.isrFoundGdev)
            let worker = registry.hooks.arm(.workerStart)
            let queued = Locked(false)
            let isr = start(in: .hardirq) { queued.value = registry.reportBroken(dev) }
            XCTAssertTrue(found.waitUntilReached())
            try registry.releaseDevice(dev)                  // cancel_work_sync finds nothing pending
            found.release()
            isr()
            XCTAssertEqual(queued.value, !bugs.isEmpty, "the late queue succeeds only with the knob")
            if !bugs.isEmpty { XCTAssertTrue(worker.waitUntilReached()) }
            RCUMemb.barrier()                                // the grace period ends: the gdev is freed
            worker.release()
            registry.flushBrokenWork()
            XCTAssertEqual(registry.log.useAfterFreeReports.map(\.accessor), bugs.isEmpty ? [] : ["iommu_group_broken_worker"])
            registry.shutdown()
        }
        expectNoLockdepReports()
    }

    /// The ``Hooks`` doc comment's example, on the S1 knob: the ISR it starts really parks and resumes.
    func testHooksExample() throws {
        let registry = Registry(configuration: .init(design: .rcu, bugs: [.plainFreeGroup]))
        let dev = registry.makeDevice(name: "dev0")
        try registry.probeDevice(dev)
        let parked = registry.hooks.arm(.isrAfterDeref)
        let isrDone = DispatchSemaphore(value: 0)
        Thread {                                             // an "ISR"
            Lockdep.withContext(.hardirq) { _ = registry.reportBroken(dev) }   // parks after loading dev->iommu_group
            isrDone.signal()
        }.start()
        XCTAssertTrue(parked.waitUntilReached())
        try registry.releaseDevice(dev)                      // the race partner runs now
        parked.release()
        isrDone.wait()
        XCTAssertEqual(registry.log.useAfterFreeReports.count, 1)
        registry.shutdown()
    }
}
