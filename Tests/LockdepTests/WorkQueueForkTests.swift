import Foundation
import Synchronization
import XCTest
@testable import Lockdep

/// Runs `child` in a child of `fork()` and returns its exit status, or `nil` when it did not
/// exit within `timeout` (it hung, and was killed) or died of a signal.
func forkedChildExitStatus(timeout: Duration = .seconds(10), _ child: () -> Int32) -> Int32? {
    let pid = fork()
    if pid == 0 { _exit(child()) }
    precondition(pid > 0, "fork failed")
    let deadline = ContinuousClock.now + timeout
    var status: Int32 = 0
    while ContinuousClock.now < deadline {
        if waitpid(pid, &status, WNOHANG) == pid {
            return status & 0x7f == 0 ? (status >> 8) & 0xff : nil
        }
        usleep(1_000)
    }
    kill(pid, SIGKILL)
    _ = waitpid(pid, &status, 0)
    return nil
}

/// A counter shared with work callbacks and threads.
private final class ForkTestCounter: Sendable {
    let value = Atomic<Int>(0)
}

/// What a forked child's report handler saw (the child has one thread: no lock needed, but
/// the handler must be `Sendable`).
private final class ChildReports: @unchecked Sendable {
    var reports: [LockdepReport] = []
}

/// A ``WorkQueue`` created before `fork()` has no worker threads in the child: every call on
/// it there is reported and refused, never a silent wait for workers that do not exist.
final class WorkQueueForkTests: LockdepTestCase {
    func testQueueCreatedBeforeForkIsReportedAndRefusedInTheChild() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        let queue = WorkQueue("fork-parent-queue", threads: 2)
        defer { queue.shutdown() }
        let runs = ForkTestCounter()
        let item = WorkItem("fork-parent-work", on: queue) { runs.value.add(1, ordering: .relaxed) }
        XCTAssertTrue(item.queue())
        queue.flush()
        XCTAssertEqual(runs.value.load(ordering: .relaxed), 1, "the queue works in the parent")

        let status = forkedChildExitStatus {
            let seen = ChildReports()
            Lockdep.reportHandler = .custom { seen.reports.append($0) }
            // Each call is refused: nothing queued, no wait (without the check, flush() never returned).
            if item.queue() { return 10 }
            queue.flush()
            if item.flush() { return 11 }
            if item.cancelSync() { return 12 }
            if item.disableSync() { return 13 }
            if item.enable() { return 14 }
            if item.isPending { return 15 }
            queue.shutdown()
            // One report per call, each naming the queue and the fork.
            guard seen.reports.count == 8 else { return 20 }
            guard seen.reports.allSatisfy({ $0.kind == .workQueueUsedAfterFork }) else { return 21 }
            guard seen.reports.allSatisfy({ $0.text.contains("workqueue \"fork-parent-queue\"") && $0.text.contains("fork()") })
            else { return 22 }
            guard seen.reports[1].text.contains("WorkQueue.flush()"), seen.reports[1].site?.fileID == #fileID else { return 23 }
            // The text: the kernel-style banner, then the call, the queue, where it was made and why it is refused.
            let first = seen.reports[0]
            guard first.title == "BUG: workqueue used after fork()", first.text.contains("BUG: workqueue used after fork()"),
                  first.text.contains("called WorkItem.queue() (work declared at"),
                  first.text.contains("(created at LockdepTests/WorkQueueForkTests.swift:"),
                  first.text.contains("The call is refused. Create a new WorkQueue in the child.")
            else { return 24 }
            // A queue made in the child has workers there and runs its items.
            let childRuns = ForkTestCounter()
            let fresh = WorkQueue("fork-child-queue", threads: 1)
            let work = WorkItem("fork-child-work", on: fresh) { childRuns.value.add(1, ordering: .relaxed) }
            guard work.queue() else { return 30 }
            fresh.flush()
            fresh.shutdown()
            guard childRuns.value.load(ordering: .relaxed) == 1, seen.reports.count == 8 else { return 31 }
            return 0
        }
        XCTAssertEqual(status, 0, "the child's exit status (nil: it hung and was killed)")
        XCTAssertEqual(runs.value.load(ordering: .relaxed), 1, "the parent's item did not run again")
        XCTAssertTrue(item.queue(), "the parent's queue still works after the fork")
        queue.flush()
        XCTAssertEqual(runs.value.load(ordering: .relaxed), 2)
    }

    /// Forks while another thread queues and flushes without pause (it holds the queue's lock
    /// at some of the forks): the child's calls are refused before they take that lock.
    func testChildsCallIsRefusedWhenAParentThreadHeldTheQueueLock() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        let queue = WorkQueue("fork-busy-queue", threads: 2)
        defer { queue.shutdown() }
        let item = WorkItem("fork-busy-work", on: queue) {}
        let stop = ForkTestCounter()
        let done = DispatchSemaphore(value: 0)
        let hammer = Thread {
            while stop.value.load(ordering: .relaxed) == 0 {
                item.queue()
                item.flush()
            }
            done.signal()
        }
        // The report's code, run once here: a child that runs Swift code for the first time may
        // need a Swift runtime cache entry whose lock a parent thread held at the fork (seen: a
        // child hung on the runtime's tuple-metadata lock). The children then run known code.
        queue.reportUsedAfterFork("rehearsal", site: LockdepSite())
        XCTAssertEqual(collector.kinds, [.workQueueUsedAfterFork])
        collector.clear()
        hammer.start()
        var failures: [Int32?] = []
        for _ in 0..<30 {
            let status = forkedChildExitStatus(timeout: .seconds(5)) {
                let seen = ChildReports()
                Lockdep.reportHandler = .custom { seen.reports.append($0) }
                if item.queue() { return 10 }
                queue.flush()
                return seen.reports.map(\.kind) == [.workQueueUsedAfterFork, .workQueueUsedAfterFork] ? 0 : 20
            }
            if status != 0 { failures.append(status) }
        }
        stop.value.store(1, ordering: .relaxed)
        done.wait()
        XCTAssertEqual(failures.count, 0, "children that hung (nil) or failed: \(failures)")
    }
}
