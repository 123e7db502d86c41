#if canImport(Glibc)
import Glibc
#endif
import CURCUCommon
import Foundation
import RCU
import RCUTestSupport
import Synchronization
import XCTest

/// Regressions found by attacking the reclamation-pressure changes from the public API:
/// a nested retire during inline reclamation, a partial batch left behind by a policy
/// change, and two hangs in forked children.
final class ReclamationPressureRegressionTests: XCTestCase {
    final class Leaf: Sendable {
        let tracked: Tracked
        init(_ tracked: Tracked) { self.tracked = tracked }
    }

    /// Owns an ``RCUPointer``: its `deinit` retires the leaf.
    final class Parent: Sendable {
        let tracked: Tracked
        let child = RCUPointer<Leaf, RCUMemb>()
        init(_ tracked: Tracked, leaf: Tracked) {
            self.tracked = tracked
            child.replace(with: Leaf(leaf))
        }
    }

    /// Under the expedited policy a retiring thread runs other objects' `deinit`s inline;
    /// one that retires another object (it owns an RCUPointer) used to fill the next batch
    /// and wait for a grace period inside that callback context (Lockdep: "sleeping function
    /// called from invalid context", a trap in debug builds). It is queued instead, as on a
    /// call_rcu worker, and every object is still released exactly once.
    func testDeinitRetiringDuringInlineReclamationDoesNotWait() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        RCUMemb.backlogPolicy = RCUBacklogPolicy(highWaterMark: 2_000, lowWaterMark: 1_000, throttle: .reclaimInline)
        defer { RCUMemb.backlogPolicy = .standard }
        let parents = Ledger()
        let leaves = Ledger()
        let before = RCUMemb.backlog
        let count = 40_000
        let writers = (0..<2).map { writer in
            startThread(named: "nested-retire-\(writer)") {
                for index in stride(from: writer, to: count, by: 2) {
                    RCUMemb.retire(Parent(Tracked(id: index, ledger: parents), leaf: Tracked(id: index, ledger: leaves)))
                }
            }
        }
        writers.forEach { $0.wait() }
        let quiet = RCUMemb.barrier(untilQuiet: 64)
        let after = RCUMemb.backlog
        XCTAssertTrue(quiet.isQuiet, "\(quiet)")
        XCTAssertGreaterThan(after.inlineReclamations, before.inlineReclamations, "some batches were reclaimed inline")
        XCTAssertEqual(recorder.lockdepReports.map(\.description), [])
        XCTAssertEqual(recorder.kinds, [])
        XCTAssertEqual(parents.freedCount, count)
        XCTAssertEqual(leaves.freedCount, count)
        XCTAssertEqual(parents.doubleFrees + leaves.doubleFrees, 0)
    }

    /// A partial batch gathered while retires were throttled, then the policy changed so that
    /// nothing is throttled, while other retires keep the backlog above the low-water mark:
    /// the sweeper used to wait for the backlog to drain to that mark, keeping the gathered
    /// objects for as long as the other retires went on. It hands them over once nothing is
    /// throttled.
    func testPartialBatchIsHandedOverOnceNothingIsThrottled() {
        RCUMemb.backlogPolicy = RCUBacklogPolicy(highWaterMark: 100, lowWaterMark: 50, throttle: .reclaimInline)
        defer { RCUMemb.backlogPolicy = .standard }
        let ledger = Ledger()
        // A reader holds up the grace period, so the backlog stays over the mark while 300
        // throttled retires gather in the batch (fewer than 512: nobody fills it).
        let reader = HeldReader<RCUMemb>(named: "partial-reader")
        for _ in 0..<200 { RCUMemb.retire(Filler()) }
        onThread(named: "partial-writer") {
            for index in 0..<300 { RCUMemb.retire(Tracked(id: index, ledger: ledger)) }
        }
        XCTAssertTrue(RCUMemb.backlog.isThrottling)
        RCUMemb.backlogPolicy = RCUBacklogPolicy(highWaterMark: 1_000_000, lowWaterMark: 10, throttle: .reclaimInline)
        let running = Count(1)
        let traffic = startThread(named: "partial-traffic") {
            while running.load() == 1 {
                for _ in 0..<50 { RCUMemb.retire(Filler()) }
                usleep(100)
            }
        }
        reader.release()
        let freedWhileTrafficRuns = ledger.waitForFreed(300, timeout: 5)
        let pending = RCUMemb.pendingCallbacks
        running.store(0)
        traffic.wait()
        XCTAssertTrue(freedWhileTrafficRuns, "gathered objects reclaimed: \(ledger.freedCount) of 300 (backlog \(pending))")
        XCTAssertTrue(ledger.waitForFreed(300, timeout: 20))
        XCTAssertEqual(ledger.doubleFrees, 0)
        RCUMemb.barrier()
    }

    /// In a child of an unsafe fork (another thread was a registered reader), or of a fork
    /// before any call_rcu installed liburcu's fork hooks, liburcu's child hook does not run,
    /// so a dedicated worker's thread does not exist there: a thread that exits with one
    /// used to wait in call_rcu_data_free forever.
    func testUnsafeForkChildThreadWithDedicatedWorkerExits() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        let ready = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let reader = startThread(named: "registered-reader") {
            RCUMemb.registerThread()
            ready.signal()
            release.wait()
        }
        ready.wait()
        defer {
            release.signal()
            reader.wait()
        }
        let status = Locked<Int32?>(nil)
        runOnJoinedThread(named: "fork-worker") {
            try? RCUMemb.useCallbackWorkers(.perThread)
            let child = fork()
            if child == 0 {
                alarm(30)   // a hang ends as SIGALRM, which the parent sees
                // The thread ends: its key destructors run in the order the keys were created
                // (glibc), the package's first, then this one, which ends the child (call_rcu
                // workers that other flavors' fork hooks started would keep it alive).
                var last = pthread_key_t()
                pthread_key_create(&last) { _ in _exit(0) }
                pthread_setspecific(last, UnsafeRawPointer(bitPattern: 1))
                return
            }
            status.withLock { $0 = Self.wait(for: child, seconds: 20) }
            try? RCUMemb.useCallbackWorkers(.shared)
        }
        XCTAssertEqual(status.withLock { $0 }, 0, "the child exited (nil: it hung and was killed)")
    }

    /// A thread adding to the expedited batch may hold its lock at a fork(); the child's
    /// barrier (which hands the batch over) and its sweeper used to wait for that thread
    /// forever (and, with the lock merely unlocked in the child, a half-written batch crashed
    /// a child's worker under ASan). bp: its registry is cleaned at fork, so the children may
    /// wait for grace periods. A fork while a retirer was inside call_rcu's two-step append
    /// left the child's worker waiting at the gap, its barrier with it (rare: a run in 20
    /// hung; the shim's fork gate, see ``testForkWaitsForACallerInsideCallRCU()``).
    func testForkWhileRetiresFillTheBatch() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        RCUBulletproof.backlogPolicy = RCUBacklogPolicy(highWaterMark: 1_000, lowWaterMark: 500, throttle: .reclaimInline)
        defer { RCUBulletproof.backlogPolicy = .standard }
        let running = Count(1)
        let retirers = (0..<2).map { index in
            startThread(named: "batch-fill-\(index)") {
                while running.load() == 1 { RCUBulletproof.retire(Filler()) }
            }
        }
        usleep(100_000)
        // Each fork hits the lock held with a small probability (2 to 4 in 60 before the fix),
        // a retirer inside call_rcu with a smaller one (before the fork gate).
        let children = forkChildren(120, alarm: 10, timeout: .seconds(15)) { RCUBulletproof.barrier() }
        running.store(0)
        retirers.forEach { $0.wait() }
        RCUBulletproof.barrier()
        XCTAssertEqual(children.hung, 0, "children whose barrier() never returned")
        XCTAssertEqual(children.failed, 0, "children that did not exit 0")
    }

    /// liburcu's call_rcu appends to a worker's queue in two steps (it swaps the queue's
    /// tail, then links the old tail to the new node); a fork() between them left the
    /// child's worker waiting at the gap forever, and the child's barrier() with it (the rare
    /// hang of the test above). The shim's fork gate makes fork() wait until every
    /// caller inside call_rcu has left: here a caller is held there (the shim's test hook)
    /// while the test forks, and must leave before fork() returns. Without the gate, fork()
    /// returned while it was held. Meanwhile another thread retires and finds the gate
    /// closed: its callbacks wait on the gate's held list, and every one of them still runs,
    /// once, in the parent.
    func testForkWaitsForACallerInsideCallRCU() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        RCUBulletproof.retire(Filler())   // installs bp's fork hooks before the fork
        HeldEnqueue.forking.store(false, ordering: .sequentiallyConsistent)
        HeldEnqueue.callerLeft.store(0, ordering: .sequentiallyConsistent)
        curcu_set_enqueue_test_hook { HeldEnqueue.hold() }
        defer { curcu_set_enqueue_test_hook(nil) }
        let caller = startThread(named: "held-in-call_rcu") {
            HeldEnqueue.thread.store(UInt(pthread_self()), ordering: .sequentiallyConsistent)
            RCUBulletproof.retire(Filler())
        }
        guard HeldEnqueue.entered.wait(timeout: .now() + 20) == .success else {
            return XCTFail("the caller never reached call_rcu")
        }
        // Retires through the whole fork, most of them while the gate is closed.
        let ledger = Ledger()
        let retiring = Count(1)
        let retired = Count(0)
        let other = startThread(named: "retires-at-the-gate") {
            var id = 0
            while retiring.load() == 1 {
                RCUBulletproof.retire(Tracked(id: id, ledger: ledger))
                id += 1
                usleep(50)
            }
            retired.store(id)
        }
        usleep(20_000)
        HeldEnqueue.forking.store(true, ordering: .sequentiallyConsistent)
        let child = fork()
        if child == 0 {
            alarm(10)
            RCUBulletproof.barrier()   // the child's queue is whole: its barrier returns
            _exit(0)
        }
        let forkReturned = HeldEnqueue.events.add(1, ordering: .sequentiallyConsistent).newValue
        usleep(20_000)
        retiring.store(0)
        other.wait()
        caller.wait()
        let callerLeft = HeldEnqueue.callerLeft.load(ordering: .sequentiallyConsistent)
        XCTAssertGreaterThan(callerLeft, 0, "the caller was held inside call_rcu")
        XCTAssertLessThan(callerLeft, forkReturned, "fork() returned while a caller was inside call_rcu")
        XCTAssertEqual(Self.wait(for: child, seconds: 15), 0, "the child's barrier() returned")
        RCUBulletproof.barrier()
        let count = retired.load()
        XCTAssertGreaterThan(count, 0)
        XCTAssertTrue(ledger.waitForFreed(count, timeout: 20), "freed \(ledger.freedCount) of \(count)")
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    /// The test hook's state: it holds one caller (the test's thread, not a call_rcu worker
    /// queueing a callback meanwhile) inside the gate until the test has started to fork,
    /// and long enough after that for a fork() that does not wait to return.
    /// rculfqueue frees the dummy node a dequeue passes with the call_rcu it was given at
    /// init. That was liburcu's own: outside the fork gate (the two-step append above,
    /// unguarded across a fork) and outside the backlog. It is the shim's now: dequeuing the
    /// one element of a queue queues two callbacks through the shim's call_rcu, whose enqueue
    /// hook sees both (the element's node and the dummy node ahead of it; with liburcu's own
    /// call_rcu the hook saw only the first), for every flavor.
    func testLockFreeQueueFreesItsDummyNodesThroughTheShim() {
        func check<Flavor: RCUFlavor>(_: Flavor.Type) {
            let queue = LockFreeQueue<Int, Flavor>()
            queue.enqueue(7)
            Flavor.barrier()   // no callback of an earlier test is queued meanwhile
            ShimCalls.count.store(0, ordering: .sequentiallyConsistent)
            ShimCalls.thread.store(UInt(pthread_self()), ordering: .sequentiallyConsistent)
            curcu_set_enqueue_test_hook {   // this thread's calls only: a worker's may come meanwhile
                guard ShimCalls.thread.load(ordering: .sequentiallyConsistent) == UInt(pthread_self()) else { return }
                ShimCalls.count.add(1, ordering: .sequentiallyConsistent)
            }
            let element = queue.dequeue()
            curcu_set_enqueue_test_hook(nil)
            XCTAssertEqual(element, 7)
            XCTAssertEqual(ShimCalls.count.load(ordering: .sequentiallyConsistent), 2,
                           "\(Flavor.self): the element's node and the dummy node queued through the shim")
            Flavor.barrier()
        }
        check(RCUMemb.self)
        check(RCUQSBR.self)
        check(RCUBulletproof.self)
        check(RCUMemoryBarrier.self)
    }

    private enum ShimCalls {
        static let thread = Atomic<UInt>(0)
        static let count = Atomic<Int>(0)
    }

    private enum HeldEnqueue {
        static let thread = Atomic<UInt>(0)
        static let forking = Atomic<Bool>(false)
        static let events = Atomic<Int>(0)
        static let callerLeft = Atomic<Int>(0)
        static let entered = DispatchSemaphore(value: 0)

        static func hold() {
            guard UInt(pthread_self()) == thread.load(ordering: .sequentiallyConsistent) else { return }
            thread.store(0, ordering: .sequentiallyConsistent)
            entered.signal()
            while !forking.load(ordering: .sequentiallyConsistent) { usleep(1_000) }
            usleep(200_000)
            callerLeft.store(events.add(1, ordering: .sequentiallyConsistent).newValue, ordering: .sequentiallyConsistent)
        }
    }

    /// A retired object that tracks nothing.
    final class Filler: Sendable {}

    /// The child's wait status, or nil when it did not end within `seconds` (then killed,
    /// its stacks printed first: ``waitForChild(_:timeout:)``).
    private static func wait(for child: pid_t, seconds: Double) -> Int32? {
        let (status, ended) = waitForChild(child, timeout: .seconds(seconds))
        return ended ? status : nil
    }
}
