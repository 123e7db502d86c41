import Foundation
import XCTest
@testable import Lockdep

final class WorkQueueTests: LockdepTestCase {
    var queue: WorkQueue!

    override func setUp() {
        super.setUp()
        queue = WorkQueue("iommu", threads: 2)
    }

    override func tearDown() {
        queue.shutdown()
        super.tearDown()
    }

    /// Seed 001: a per-device work item whose worker takes group->mutex, cancelled under
    /// group->mutex. The worker has already finished when the cancel runs, so the threads never
    /// meet; the validator still reports the cycle, naming both locks and both sites.
    func testSeed001CancelUnderMutexIsReportedWithoutDeadlock() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let groupMutex = CheckedMutex(class: .unique("group->mutex"))
        let lockLine: UInt = #line + 1
        let work = WorkItem("gdev_broken", on: queue, class: .unique("work:gdev_broken")) { groupMutex.withLock { } }
        XCTAssertTrue(work.queue())
        work.flush()  // the worker ran and released everything: no deadlock is possible any more
        expectSilent()

        let mutexLine: UInt = #line + 3
        let cancelLine: UInt = #line + 3
        onThread(named: "writer-1") {
            groupMutex.lock()
            work.cancelSync()
            groupMutex.unlock()
        }
        let r = try XCTUnwrap(expectOne(.circularDependency))
        XCTAssertEqual(r.thread, "writer-1")
        XCTAssertTrue(r.otherThread?.hasPrefix("iommu/") ?? false, "edge made by a worker: \(String(describing: r.otherThread))")
        XCTAssertEqual(Set(r.classes), ["group->mutex", "work:gdev_broken"])
        XCTAssertEqual(r.lock?.name, "work:gdev_broken")
        XCTAssertEqual(r.site?.line, cancelLine)
        XCTAssertEqual(r.heldLocks.map(\.name), ["group->mutex"])
        XCTAssertEqual(r.heldLocks.first?.site?.line, mutexLine)
        // The chain: the worker's work -> mutex edge (made at the lock site inside the callback),
        // then the new mutex -> work edge (made at the cancelSync site).
        XCTAssertEqual(r.chain.count, 2)
        XCTAssertEqual(r.chain[0].from, "work:gdev_broken")
        XCTAssertEqual(r.chain[0].to, "group->mutex")
        XCTAssertEqual(r.chain[0].toSite.line, lockLine)
        XCTAssertEqual(r.chain[1].from, "group->mutex")
        XCTAssertEqual(r.chain[1].to, "work:gdev_broken")
        XCTAssertEqual(r.chain[1].toSite.line, cancelLine)
        XCTAssertTrue(r.text.hasPrefix("======================================================\nWARNING: possible circular locking dependency detected\n"))
        XCTAssertTrue(r.text.contains("thread \"writer-1\" is trying to acquire lock:\n  (work:gdev_broken){+.+.}, at: "))
        XCTAssertTrue(r.text.contains("WorkQueueTests.swift:\(cancelLine)"))
        XCTAssertTrue(r.text.contains("WorkQueueTests.swift:\(lockLine)"))
        XCTAssertTrue(r.text.contains("but thread is already holding lock:\n  (group->mutex){+.+.}, at: "))
        XCTAssertTrue(r.text.contains("the existing dependency chain (in reverse order) is:"))
        XCTAssertTrue(r.text.contains("-> #1 (work:gdev_broken){+.+.}:"))
        XCTAssertTrue(r.text.contains("-> #0 (group->mutex){+.+.}:"))
        XCTAssertTrue(r.text.contains("""
                   T0                    T1
                   ----                  ----
              lock(group->mutex);
                                         lock(work:gdev_broken);
                                         lock(group->mutex);
              lock(work:gdev_broken);

             *** DEADLOCK ***
            """))
        XCTAssertTrue(r.text.contains("1 lock held by \"writer-1\":\n #0: (group->mutex){+.+.}, at: "))
    }

    /// The same bug found from the other side: the cancel under the mutex happens first (the item
    /// is not even queued), then the worker runs and its acquire of the mutex closes the cycle.
    func testSeed001ReportedFromTheWorker() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let groupMutex = CheckedMutex(class: .unique("group->mutex"))
        let work = WorkItem("gdev_broken", on: queue, class: .unique("work:gdev_broken")) { groupMutex.withLock { } }
        _ = groupMutex.withLock { work.cancelSync() }
        expectSilent()
        work.queue()
        work.flush()
        let r = try XCTUnwrap(expectOne(.circularDependency))
        XCTAssertTrue(r.thread.hasPrefix("iommu/"))
        XCTAssertEqual(r.lock?.name, "group->mutex")
        XCTAssertEqual(r.heldLocks.map(\.name), ["wq:iommu", "work:gdev_broken"])
    }

    func testFixedFormIsSilent() {
        let groupMutex = CheckedMutex(class: .unique("group->mutex"))
        let work = WorkItem("gdev_broken", on: queue, class: .unique("work:gdev_broken")) { groupMutex.withLock { } }
        work.queue()
        work.flush()
        groupMutex.withLock { Lockdep.assertHeld(groupMutex) }
        Lockdep.assertNotHeld(groupMutex)
        work.cancelSync()
        expectSilent()
    }

    func testQueueFlushUnderLockTheCallbackTakes() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let l = CheckedMutex(class: .unique("L"))
        let work = WorkItem("w", on: queue, class: .unique("work:w")) { l.withLock { } }
        work.queue()
        queue.flush()
        l.withLock { queue.flush() }
        let r = try XCTUnwrap(expectOne(.circularDependency))
        XCTAssertEqual(r.lock?.name, "wq:iommu")
        XCTAssertTrue(r.classes.contains("L"))
    }

    func testLeakedLockOrReadSection() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let rcu = LockdepMap(class: .unique("rcu_read"), options: [.atomic, .rcu])
        let work = WorkItem("leaky", on: queue, class: .unique("work:leaky")) {
            Lockdep.acquire(rcu, mode: .recursiveRead)
        }
        work.queue()
        work.flush()
        let r = try XCTUnwrap(expectOne(.workqueueLeak))
        XCTAssertTrue(r.text.hasPrefix("BUG: workqueue leaked lock or RCU: \"iommu/"))
        XCTAssertTrue(r.text.contains("last function: work:leaky"))
        XCTAssertTrue(r.text.contains("leaked: (rcu_read)"))
        XCTAssertEqual(r.lock?.name, "rcu_read")
        XCTAssertEqual(r.classes, ["rcu_read", "work:leaky"])
        // The worker dropped the leaked entry: the next item runs clean.
        collector.clear()
        let clean = WorkItem("clean", on: queue, class: .unique("work:clean")) {}
        clean.queue()
        clean.flush()
        expectSilent()
    }

    func testQueueCancelDisableSemantics() {
        let single = WorkQueue("single", threads: 1)
        defer { single.shutdown() }
        let counter = Counter()
        let item = WorkItem("counted", on: single, class: .unique("work:counted")) { counter.increment() }
        let gate = occupyOnlyWorker(of: single)   // `item` stays pending
        XCTAssertTrue(item.queue())
        XCTAssertFalse(item.queue(), "already pending")
        XCTAssertTrue(item.isPending)
        XCTAssertTrue(item.cancelSync(), "was pending")
        XCTAssertFalse(item.isPending)
        XCTAssertTrue(item.queue())
        XCTAssertTrue(item.disableSync())
        XCTAssertFalse(item.queue(), "disabled")
        XCTAssertTrue(item.enable())
        XCTAssertTrue(item.queue())
        gate.signal()
        XCTAssertTrue(item.flush() || counter.value == 1)
        XCTAssertEqual(counter.value, 1)
        XCTAssertFalse(item.cancelSync(), "not pending any more")
        expectSilent()
    }

    func testCancelSyncInAtomicContextIsInvalid() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let spin = CheckedSpinLock(class: .unique("spin"))
        let work = WorkItem("w", on: queue, class: .unique("work:w")) {}
        _ = spin.withLock { work.cancelSync() }
        let r = try XCTUnwrap(collector.reports.first)
        XCTAssertEqual(r.kind, .sleepInInvalidContext)
        XCTAssertTrue(r.text.contains("atomic section of (spin) entered at:"))
    }

    func testSoftirqWorkQueueCallbacksCannotSleep() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let atomicQueue = WorkQueue("atomic", threads: 1, context: .softirq)
        defer { atomicQueue.shutdown() }
        let m = CheckedMutex(class: .unique("m"))
        let work = WorkItem("w", on: atomicQueue, class: .unique("work:w")) {
            XCTAssertEqual(Lockdep.currentContext, .softirq)
            m.withLock {}
        }
        work.queue()
        work.flush()
        XCTAssertEqual(collector.reports.first?.kind, .sleepInInvalidContext)
    }
}

/// Keeps the only worker of `queue` busy until the returned gate is signalled.
func occupyOnlyWorker(of queue: WorkQueue, file: StaticString = #filePath, line: UInt = #line) -> DispatchSemaphore {
    let gate = DispatchSemaphore(value: 0)
    let started = DispatchSemaphore(value: 0)
    let blocker = WorkItem("blocker", on: queue, class: .unique("work:blocker")) {
        started.signal()
        gate.wait()
    }
    XCTAssertTrue(blocker.queue(), file: file, line: line)
    started.wait()
    return gate
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

/// Regression found by the IOMMU port: one item never runs on two workers at once.
final class WorkQueueReentrancyTests: LockdepTestCase {
    func testItemQueuedWhileRunningDoesNotRunConcurrently() {
        let queue = WorkQueue("reentrancy", threads: 3)
        defer { queue.shutdown() }
        let state = ReentrancyProbe()
        let item = WorkItem("probe", on: queue) { state.run() }
        for _ in 0..<200 {
            _ = item.queue()
            usleep(50)
        }
        queue.flush()
        _ = item.cancelSync()
        XCTAssertGreaterThan(state.runs, 1)
        XCTAssertEqual(state.maxConcurrent, 1, "an item ran on two workers at once")
        expectSilent()
    }
}

final class ReentrancyProbe: @unchecked Sendable {
    private let lock = NSLock()
    private var inside = 0
    private(set) var maxConcurrent = 0
    private(set) var runs = 0

    func run() {
        lock.lock()
        inside += 1
        runs += 1
        maxConcurrent = max(maxConcurrent, inside)
        lock.unlock()
        usleep(200)
        lock.lock()
        inside -= 1
        lock.unlock()
    }
}

/// Work items embedded in their container (`WorkItem(_:on:container:)`): no cycle while idle,
/// the container pinned while the item is pending or running.
final class WorkItemContainerTests: LockdepTestCase {
    /// A container that owns its work item, as `struct group_device` owns `broken_work`.
    final class Owner: @unchecked Sendable {
        let deinits: Counter
        let runs = Counter()
        var work: WorkItem?
        init(deinits: Counter) { self.deinits = deinits }
        deinit { deinits.increment() }
    }

    func makeOwner(on queue: WorkQueue, deinits: Counter, gate: DispatchSemaphore? = nil) -> Owner {
        let owner = Owner(deinits: deinits)
        owner.work = WorkItem("owned", on: queue, class: .unique("work:owned"), container: owner) { owner in
            gate?.wait()
            owner.runs.increment()
        }
        return owner
    }

    func testIdleItemDoesNotKeepItsContainerAlive() {
        let queue = WorkQueue("container-idle", threads: 1)
        defer { queue.shutdown() }
        let deinits = Counter()
        var owner: Owner? = makeOwner(on: queue, deinits: deinits)
        XCTAssertNotNil(owner?.work)
        owner = nil
        XCTAssertEqual(deinits.value, 1, "the item's reference to its container made a cycle")
    }

    func testQueuedItemPinsItsContainerUntilTheRunEnds() {
        let queue = WorkQueue("container-pinned", threads: 1)
        defer { queue.shutdown() }
        let deinits = Counter()
        let gate = DispatchSemaphore(value: 0)
        var owner: Owner? = makeOwner(on: queue, deinits: deinits, gate: gate)
        let runs = owner!.runs
        XCTAssertTrue(owner!.work!.queue())
        owner = nil                      // only the queued item holds the container now
        XCTAssertEqual(deinits.value, 0, "a queued item's container was deallocated")
        gate.signal()
        queue.flush()
        XCTAssertEqual(runs.value, 1, "the callback did not get its container")
        // The worker drops the pin just after the run, outside the queue's lock: flush() can
        // return a moment before that.
        let deadline = Date().addingTimeInterval(5)
        while deinits.value == 0 && Date() < deadline { usleep(1_000) }
        XCTAssertEqual(deinits.value, 1, "the container outlived its item's run")
        expectSilent()
    }

    func testCancelUnpinsTheContainer() {
        let queue = WorkQueue("container-cancel", threads: 1)
        defer { queue.shutdown() }
        let gate = occupyOnlyWorker(of: queue)   // the owner's item stays pending
        let deinits = Counter()
        var owner: Owner? = makeOwner(on: queue, deinits: deinits)
        let work = owner!.work!
        let runs = owner!.runs
        XCTAssertTrue(work.queue())
        owner = nil
        XCTAssertEqual(deinits.value, 0)
        XCTAssertTrue(work.cancelSync(), "was pending")
        XCTAssertEqual(deinits.value, 1, "a cancelled item still pinned its container")
        gate.signal()
        queue.flush()
        XCTAssertEqual(runs.value, 0)
        expectSilent()
    }
}
