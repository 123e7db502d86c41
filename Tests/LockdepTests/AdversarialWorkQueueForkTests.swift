import Foundation
import Synchronization
import XCTest
@testable import Lockdep

/// What a forked process's report handler saw (one thread there: no lock needed).
private final class SeenKinds: @unchecked Sendable {
    var kinds: [LockdepReport.Kind] = []
}

private final class RunCount: Sendable {
    let value = Atomic<Int>(0)
}

/// Work queues across two generations of fork(): a queue belongs to the process that made it,
/// in the child and in the grandchild alike.
final class AdversarialWorkQueueForkTests: LockdepTestCase {
    /// Runs the test below in a fresh test process (see ``runInFreshTestProcess(_:file:line:)``:
    /// in the suite's process a child hung in about 1 run in 6 on a Swift runtime lock).
    func testGrandchildRefusesBothAncestorsQueuesAndRunsItsOwn() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        runInFreshTestProcess("LockdepTests.AdversarialWorkQueueForkTests/testGrandchildInAFreshProcess")
    }

    /// Runs only in the fresh process of the test above.
    func testGrandchildInAFreshProcess() throws {
        guard inFreshTestProcess else {
            throw XCTSkip("runs in the fresh process of testGrandchildRefusesBothAncestorsQueuesAndRunsItsOwn")
        }
        let parentQueue = WorkQueue("adv-gen0-queue", threads: 1)
        defer { parentQueue.shutdown() }
        let parentItem = WorkItem("adv-gen0-work", on: parentQueue) {}
        // The refusal's code, run here first (a child runs only code its parent ran: see ForkHooks).
        parentQueue.reportUsedAfterFork("rehearsal", site: LockdepSite())
        // So is a queue's whole life, and the parent's worker has started and gone idle: a
        // thread still starting at the fork can hold a Swift runtime lock (a witness table
        // being instantiated) that the child then waits for (seen: 1 run in 6 hung).
        let rehearsal = WorkQueue("adv-rehearsal-queue", threads: 1)
        let rehearsalItem = WorkItem("adv-rehearsal-work", on: rehearsal) {}
        _ = rehearsalItem.queue()
        rehearsal.flush()
        rehearsal.shutdown()
        _ = parentItem.queue()
        parentQueue.flush()
        collector.clear()

        let status = forkedChildExitStatus(timeout: .seconds(20)) {
            let seen = SeenKinds()
            Lockdep.reportHandler = .custom { seen.kinds.append($0.kind) }
            if parentItem.queue() { return 10 }
            // The child's own queue works in the child...
            let childQueue = WorkQueue("adv-gen1-queue", threads: 1)
            let childRuns = RunCount()
            let childItem = WorkItem("adv-gen1-work", on: childQueue) { childRuns.value.add(1, ordering: .relaxed) }
            guard childItem.queue() else { return 11 }
            childQueue.flush()
            guard childRuns.value.load(ordering: .relaxed) == 1 else { return 12 }
            // ...and is refused in the grandchild, as the parent's is, while a queue made there works.
            let grandchild = forkedChildExitStatus(timeout: .seconds(8)) {
                let seenThere = SeenKinds()
                Lockdep.reportHandler = .custom { seenThere.kinds.append($0.kind) }
                if childItem.queue() { return 40 }
                childQueue.flush()
                if parentItem.queue() { return 41 }
                guard seenThere.kinds == [.workQueueUsedAfterFork, .workQueueUsedAfterFork, .workQueueUsedAfterFork]
                else { return 42 }
                let own = WorkQueue("adv-gen2-queue", threads: 1)
                let runs = RunCount()
                let item = WorkItem("adv-gen2-work", on: own) { runs.value.add(1, ordering: .relaxed) }
                guard item.queue() else { return 43 }
                own.flush()
                own.shutdown()
                return runs.value.load(ordering: .relaxed) == 1 && seenThere.kinds.count == 3 ? 0 : 44
            }
            guard grandchild == 0 else { return grandchild.map { $0 } ?? 50 }
            // The grandchild's fork left the child's queue working.
            guard childItem.queue() else { return 13 }
            childQueue.flush()
            childQueue.shutdown()
            guard childRuns.value.load(ordering: .relaxed) == 2 else { return 14 }
            return seen.kinds == [.workQueueUsedAfterFork] ? 0 : 15
        }
        XCTAssertEqual(status, 0, "the child's exit status (4x: the grandchild's; nil: hung and killed)")
        XCTAssertTrue(parentItem.queue(), "the parent's queue still works")
        parentQueue.flush()
    }
}
