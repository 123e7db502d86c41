#if canImport(Glibc)
import Glibc
#endif
import Foundation
import RCU
import RCUTestSupport
import Synchronization
import XCTest

/// The fork gate attacked across flavors: a callback of one flavor that retires into
/// another while a third thread forks.
final class ForkGateCrossFlavorTests: XCTestCase {

    /// How long the suite's process waits for a test's fresh process (longer than its alarm).
    private static let freshProcessTimeout: Duration = .seconds(90)

    /// Set in the memb callback while it waits to retire into bp.
    private static let inCallback = DispatchSemaphore(value: 0)

    /// A memb object whose deinit (on memb's call_rcu worker) waits, then retires into bp,
    /// the worker thread's first bp call: it registers the worker with bp.
    final class RetiresIntoBulletproof: Sendable {
        let ledger: Ledger
        init(_ ledger: Ledger) { self.ledger = ledger }
        deinit {
            ForkGateCrossFlavorTests.inCallback.signal()
            usleep(300_000)   // the forking thread runs bp's prepare hook meanwhile
            RCUBulletproof.retire(Tracked(id: 1, ledger: ledger))
        }
    }

    /// bp's prepare hook takes bp's registry lock; a later prepare hook (memb's, installed
    /// first) waits for memb's worker to pause. A memb callback that retired into bp for its
    /// thread's first time registered before entering the gate, waiting on that lock: fork()
    /// never returned. Registration now happens inside the gate, so a caller finding it
    /// closed holds its node unregistered. Run in a fresh process: the hooks' order is the
    /// order in which the flavors were first used.
    func testMembCallbackRetiringIntoBulletproofDuringFork() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard inFreshTestProcess else {
            let test = "RCUTests.ForkGateCrossFlavorTests/testMembCallbackRetiringIntoBulletproofDuringFork"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: Self.freshProcessTimeout))
        }
        alarm(30)   // a hang ends this fresh process with SIGALRM, which the test sees
        RCUMemb.retire(Tracked(id: 0, ledger: Ledger()))   // memb's fork hooks first
        RCUMemb.barrier()
        RCUBulletproof.retire(Tracked(id: 0, ledger: Ledger()))   // then bp's
        RCUBulletproof.barrier()
        let ledger = Ledger()
        RCUMemb.retire(RetiresIntoBulletproof(ledger))
        XCTAssertEqual(Self.inCallback.wait(timeout: .now() + 20), .success, "the memb callback ran")
        let child = fork()
        if child == 0 {
            alarm(10)
            RCUBulletproof.barrier()
            _exit(ledger.freedCount == 1 ? 0 : 3)
        }
        XCTAssertGreaterThan(child, 0)
        let (status, ended) = waitForChild(child, timeout: .seconds(20))
        XCTAssertTrue(ended, "the child's barrier returned")
        // The child's copy of the held node was queued there: its object was freed once.
        XCTAssertEqual(status, 0, "child status")
        RCUMemb.barrier()
        RCUBulletproof.barrier()
        XCTAssertTrue(ledger.waitForFreed(1, timeout: 20), "freed \(ledger.freedCount) of 1 in the parent")
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    /// fork() from a callback (a retired object's deinit) waits for its own call_rcu worker
    /// to pause, forever (liburcu's fork hook): a silent hang. It still hangs, but says why
    /// on stderr first. The fresh process hangs by design; its main thread checks the words
    /// and ends it.
    func testForkInsideACallbackSaysWhyItHangs() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard inFreshTestProcess else {
            let test = "RCUTests.ForkGateCrossFlavorTests/testForkInsideACallbackSaysWhyItHangs"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: Self.freshProcessTimeout))
        }
        alarm(30)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fork-in-callback-\(getpid()).txt").path
        let file = open(path, O_CREAT | O_TRUNC | O_RDWR, 0o600)
        XCTAssertGreaterThanOrEqual(file, 0)
        dup2(file, STDERR_FILENO)
        RCUMemb.retire {
            if fork() == 0 { _exit(0) }   // never reached: the worker waits for itself
        }
        usleep(2_000_000)
        let words = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        unlink(path)
        _exit(words.contains("fork() inside an rcu_memb callback") ? 0 : 1)
    }

    /// The fork hooks queue what callers held at the closed gate. They registered the thread
    /// that queued them: in the parent, a forking thread that never used memb stayed a
    /// registered memb reader (so later forks from other threads made unsafe children); in
    /// the child, registering waited for ever on memb's registry lock, which a parent thread
    /// inside synchronize() held at the fork: fork() never returned in the child. Here one
    /// thread retires, one synchronizes, and a thread that never used memb forks.
    func testForkHooksQueueHeldNodesWithoutRegistering() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard inFreshTestProcess else {
            let test = "RCUTests.ForkGateCrossFlavorTests/testForkHooksQueueHeldNodesWithoutRegistering"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: Self.freshProcessTimeout))
        }
        alarm(80)
        let running = Atomic<Bool>(true)
        let retirer = startThread(named: "held-retirer") {
            while running.load(ordering: .sequentiallyConsistent) { RCUMemb.retire(Filler()) }
        }
        let synchronizer = startThread(named: "synchronizer") {
            while running.load(ordering: .sequentiallyConsistent) { RCUMemb.synchronize() }
        }
        usleep(50_000)
        let results = Atomic<Int>(0)   // forks, then 1000 x hung children, then 1_000_000 x registered after
        let forker = startThread(named: "forker") {
            for _ in 0..<40 {
                let child = fork()
                if child == 0 { _exit(0) }
                let (_, ended) = waitForChild(child, timeout: .seconds(5))
                results.add(ended ? 1 : 1_000, ordering: .sequentiallyConsistent)
                if RCUMemb.isThreadRegistered { results.add(1_000_000, ordering: .sequentiallyConsistent); return }
            }
        }
        forker.wait()
        running.store(false, ordering: .sequentiallyConsistent)
        retirer.wait()
        synchronizer.wait()
        let value = results.load(ordering: .sequentiallyConsistent)
        XCTAssertEqual(value / 1_000_000, 0, "the forking thread was left a registered memb reader")
        XCTAssertEqual(value % 1_000_000 / 1_000, 0, "children that hung in fork()")
    }

    final class Filler: Sendable {}

    /// deferRetire's per-thread batches at a fork: a thread defers (bp) through 20 forks
    /// (paced: an unpaced storm left each child a backlog of 10^5 callbacks to drain);
    /// each child's deferBarrier returns and frees what was deferred before the fork at most
    /// once, and the parent frees every object once.
    func testForkWhileAThreadDefers() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard inFreshTestProcess else {
            let test = "RCUTests.ForkGateCrossFlavorTests/testForkWhileAThreadDefers"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: Self.freshProcessTimeout))
        }
        alarm(80)
        let counter = ForkStormCounters()
        let running = Atomic<Bool>(true)
        let deferrer = startThread(named: "deferrer") {
            while running.load(ordering: .sequentiallyConsistent) {
                RCUBulletproof.deferRetire(Counted(counter))
                counter.retired.add(1, ordering: .sequentiallyConsistent)
                // deferRetire never throttles: paced, so the backlog each child inherits
                // (and its barrier drains) stays small.
                if counter.retired.load(ordering: .relaxed) % 64 == 0 { usleep(100) }
            }
        }
        usleep(50_000)
        // The children's alarm outlives the parent's wait: a hung child's stacks are printed.
        let children = forkChildren(20, alarm: 30, timeout: .seconds(15)) {
            RCUBulletproof.deferBarrier()
            RCUBulletproof.barrier()
            let freed = counter.freed.load(ordering: .sequentiallyConsistent)
            _exit(freed > counter.created.load(ordering: .sequentiallyConsistent) ? 3 : 0)
        }
        running.store(false, ordering: .sequentiallyConsistent)
        deferrer.wait()
        RCUBulletproof.deferBarrier()
        XCTAssertEqual(children.hung, 0, "children whose deferBarrier() hung")
        XCTAssertEqual(children.failed, 0, "children that freed more than was created")
        XCTAssertEqual(counter.freed.load(ordering: .sequentiallyConsistent),
                       counter.created.load(ordering: .sequentiallyConsistent), "freed once each")
    }


    /// Counts its deinits: atomics only (a child may not take a lock a vanished thread held).
    final class Counted: Sendable {
        let counter: ForkStormCounters
        init(_ counter: ForkStormCounters) {
            self.counter = counter
            counter.created.add(1, ordering: .sequentiallyConsistent)
        }
        deinit { counter.freed.add(1, ordering: .sequentiallyConsistent) }
    }

    /// One retiring thread's objects: created, retired (retire returned), freed.
    final class ForkStormCounters: Sendable {
        let created = Atomic<Int>(0)
        let retired = Atomic<Int>(0)
        let freed = Atomic<Int>(0)
    }

    /// Forks while a thread per flavor retires (qsbr's alternates between an unregistered
    /// thread and a registered one retiring offline, and memb callbacks retire into bp):
    /// every child's bp barrier returns, having freed every bp object the parent had retired
    /// before the fork, no flavor frees more than was created, and the parent frees every
    /// object exactly once.
    func testForkWhileEveryFlavorRetires() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard inFreshTestProcess else {
            let test = "RCUTests.ForkGateCrossFlavorTests/testForkWhileEveryFlavorRetires"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: Self.freshProcessTimeout))
        }
        alarm(80)
        let counters = (0..<5).map { _ in ForkStormCounters() }
        let running = Atomic<Bool>(true)
        func retirer(_ index: Int, _ retire: @escaping @Sendable (Counted) -> Void) -> TestThread {
            startThread(named: "fork-storm-\(index)") {
                while running.load(ordering: .sequentiallyConsistent) {
                    retire(Counted(counters[index]))
                    counters[index].retired.add(1, ordering: .sequentiallyConsistent)
                }
            }
        }
        let threads = [
            retirer(0) { RCUMemb.retire($0) },
            retirer(1) { RCUBulletproof.retire($0) },
            retirer(2) { RCUMemoryBarrier.retire($0) },
            retirer(3) { object in
                if object.counter.created.load(ordering: .relaxed) % 2 == 0 {
                    RCUQSBR.unregisterThread()
                    RCUQSBR.retire(object)                       // unregistered: joins for the call
                } else {
                    RCUQSBR.registerThread()
                    RCUQSBR.offline { RCUQSBR.retire(object) }   // registered, offline
                }
            },
            retirer(4) { object in                               // callbacks retiring elsewhere
                RCUMemb.retire {
                    RCUBulletproof.retire(object)
                }
            },
        ]
        usleep(100_000)
        // The child's own code, run once here first: its first use of a generic conformance
        // (`counters.map`) takes a Swift runtime lock that a worker may hold at the fork, which
        // the child would inherit held (a child hung so, 1 in 20).
        _ = counters.map { $0.retired.load(ordering: .sequentiallyConsistent) }
        for (index, counter) in counters.enumerated() { _ = (index, counter.freed.load(ordering: .sequentiallyConsistent)) }
        // The children's alarm outlives the parent's wait: a hung child's stacks are printed.
        let children = forkChildren(20, alarm: 30, timeout: .seconds(15)) {
            let retiredAtFork = counters.map { $0.retired.load(ordering: .sequentiallyConsistent) }
            // Only bp's registry is cleaned at fork: the other flavors' retiring threads
            // were registered readers, so their barriers are refused here (documented).
            RCUBulletproof.barrier()
            for (index, counter) in counters.enumerated() {
                let freed = counter.freed.load(ordering: .sequentiallyConsistent)
                let mustBeFreed = index == 1 ? retiredAtFork[index] : 0
                if freed < mustBeFreed || freed > counter.created.load(ordering: .sequentiallyConsistent) {
                    _exit(Int32(10 + index))
                }
            }
        }
        running.store(false, ordering: .sequentiallyConsistent)
        threads.forEach { $0.wait() }
        for _ in 0..<2 {
            RCUMemb.barrier(); RCUBulletproof.barrier(); RCUMemoryBarrier.barrier(); RCUQSBR.barrier()
        }
        XCTAssertEqual(children.hung, 0, "children that hung")
        XCTAssertEqual(children.failed, 0, "children whose counts were wrong (wait statuses \(children.failedStatuses))")
        for (index, counter) in counters.enumerated() {
            XCTAssertEqual(counter.freed.load(ordering: .sequentiallyConsistent),
                           counter.created.load(ordering: .sequentiallyConsistent), "retirer \(index): freed once each")
        }
    }

    /// bp with per-CPU workers and one retiring thread on a dedicated (per-thread) worker,
    /// forked 20 times: each child's barrier returns having freed every object retired before
    /// the fork, and the parent frees every object once.
    func testForkWhileDedicatedAndPerCPUWorkersRetire() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard inFreshTestProcess else {
            let test = "RCUTests.ForkGateCrossFlavorTests/testForkWhileDedicatedAndPerCPUWorkersRetire"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: Self.freshProcessTimeout))
        }
        try forkWhileWorkersRetire(throttling: false)
    }

    /// The same with retires throttled under `.reclaimInline` (they wait, and gather in the
    /// flavor's batch): the children's barriers return and free nothing twice; what the batch
    /// had gathered at the fork is leaked in the child, as RCUInlineReclaimBatch documents
    /// (a parent thread may have been half-way through adding to it).
    func testForkWhileInlineReclaimThrottlesRetires() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard inFreshTestProcess else {
            let test = "RCUTests.ForkGateCrossFlavorTests/testForkWhileInlineReclaimThrottlesRetires"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: Self.freshProcessTimeout))
        }
        try forkWhileWorkersRetire(throttling: true)
    }

    private func forkWhileWorkersRetire(throttling: Bool) throws {
        alarm(80)
        RCUBulletproof.retire(Tracked(id: 0, ledger: Ledger()))   // hooks before the workers
        try RCUBulletproof.useCallbackWorkers(.perCPU)
        if throttling {
            RCUBulletproof.backlogPolicy = RCUBacklogPolicy(highWaterMark: 500, lowWaterMark: 200, throttle: .reclaimInline)
        }
        let counters = (0..<2).map { _ in ForkStormCounters() }
        let running = Atomic<Bool>(true)
        let threads = (0..<2).map { index in
            startThread(named: "worker-fork-\(index)") {
                if index == 0 { try? RCUBulletproof.useCallbackWorkers(.perThread) }
                while running.load(ordering: .sequentiallyConsistent) {
                    RCUBulletproof.retire(Counted(counters[index]))
                    counters[index].retired.add(1, ordering: .sequentiallyConsistent)
                }
                if index == 0 { try? RCUBulletproof.useCallbackWorkers(.shared) }
            }
        }
        usleep(100_000)
        // The child's own code, run once here first: its first use of a generic conformance
        // (`counters.map`) takes a Swift runtime lock that a worker may hold at the fork, which
        // the child would inherit held (a child hung so, 1 in 20).
        _ = counters.map { $0.retired.load(ordering: .sequentiallyConsistent) }
        for (index, counter) in counters.enumerated() { _ = (index, counter.freed.load(ordering: .sequentiallyConsistent)) }
        // The children's alarm outlives the parent's wait: a hung child's stacks are printed.
        let children = forkChildren(20, alarm: 30, timeout: .seconds(15)) {
            let retiredAtFork = counters.map { $0.retired.load(ordering: .sequentiallyConsistent) }
            RCUBulletproof.barrier()
            for (index, counter) in counters.enumerated() {
                let freed = counter.freed.load(ordering: .sequentiallyConsistent)
                let created = counter.created.load(ordering: .sequentiallyConsistent)
                if (!throttling && freed < retiredAtFork[index]) || freed > created {
                    print("child: retirer \(index) freed \(freed) of \(retiredAtFork[index]) retired before the fork, \(created) created")
                    fflush(nil)
                    _exit(Int32(10 + index))
                }
            }
        }
        running.store(false, ordering: .sequentiallyConsistent)
        threads.forEach { $0.wait() }
        RCUBulletproof.barrier()
        RCUBulletproof.backlogPolicy = .standard
        try RCUBulletproof.useCallbackWorkers(.shared)
        XCTAssertEqual(children.hung, 0, "children that hung")
        XCTAssertEqual(children.failed, 0, "children whose counts were wrong")
        for (index, counter) in counters.enumerated() {
            XCTAssertEqual(counter.freed.load(ordering: .sequentiallyConsistent),
                           counter.created.load(ordering: .sequentiallyConsistent), "retirer \(index): freed once each")
        }
    }
}
