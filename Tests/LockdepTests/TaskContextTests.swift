import Foundation
import XCTest
@testable import Lockdep

/// Swift tasks as a context: blocking waits in a task are reported, a short mutex section is
/// not, and a lock a task takes on one thread and releases on another (held across an
/// `await`) is reported and refused.
final class TaskContextTests: LockdepTestCase {
    func testConditionWaitInTaskIsReported() async throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let mutex = CheckedMutex(class: .unique("config->lock"))
        let condition = CheckedCondition("config->changed")
        let line: UInt = #line + 2
        await Task.detached {
            mutex.withLock { _ = condition.wait(mutex, timeout: .milliseconds(1)) }
        }.value
        let r = expectOne(.blockingInTask)
        XCTAssertEqual(r?.title, "BUG: blocking call in async task context at TaskContextTests.swift:\(line)")
        XCTAssertEqual(r?.heldLocks.map(\.name), ["config->lock"], "the mutex the wait releases is listed as held")
        XCTAssertTrue(r?.text.contains("CheckedCondition.wait(_:timeout:) blocks thread") == true, r?.text ?? "")
        XCTAssertTrue(r?.text.contains("runs a Swift task") == true)
        XCTAssertTrue(r?.text.contains("in a task, use instead:") == true)
        XCTAssertEqual(r?.site?.fileName, "TaskContextTests.swift")
    }

    func testWorkFlushesInTaskAreReported() async throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let queue = WorkQueue("events", threads: 1)
        defer { queue.shutdown() }
        let item = WorkItem("refresh", on: queue, class: .unique("work:refresh")) {}
        await Task.detached {
            item.queue()
            item.flush()
            item.cancelSync()
            queue.flush()
        }.value
        let calls = collector.reports.filter { $0.kind == .blockingInTask }.map(\.text)
        XCTAssertEqual(calls.count, 3, calls.joined(separator: "\n"))
        for call in ["WorkItem.flush()", "WorkItem.cancelSync()", "WorkQueue.flush()"] {
            XCTAssertTrue(calls.contains { $0.contains("\(call) blocks thread") }, "\(call) not reported")
        }
    }

    func testShortMutexSectionInTaskIsAllowed() async {
        let mutex = CheckedMutex(class: .unique("stats->lock"))
        let spin = CheckedSpinLock(class: .unique("stats->spin"))
        await Task.detached {
            for _ in 0..<100 {
                mutex.withLock { spin.withLock {} }
                mutex.lock()
                mutex.unlock()
            }
        }.value
        expectSilent()
    }

    func testSameCallsOutsideTasksAreNotReported() {
        let mutex = CheckedMutex(class: .unique("config->lock"))
        let condition = CheckedCondition("config->changed")
        let queue = WorkQueue("events", threads: 1)
        defer { queue.shutdown() }
        let item = WorkItem("refresh", on: queue, class: .unique("work:refresh")) {}
        onThread(named: "plain-thread") {
            mutex.withLock { _ = condition.wait(mutex, timeout: .milliseconds(1)) }
            item.queue()
            item.flush()
            queue.flush()
        }
        expectSilent()
    }

    func testCheckSwitchesOff() async {
        Lockdep.checksTaskContext = false
        defer { Lockdep.checksTaskContext = true }
        await Task.detached {
            Lockdep.mightBlockTask("Pool.drain()", alternative: "await pool.drained()")
        }.value
        expectSilent()
    }

    func testOwnAnnotationNamesTheAlternative() async throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        await Task.detached {
            Lockdep.mightBlockTask("Pool.drain()", alternative: "await pool.drained()")
        }.value
        let r = expectOne(.blockingInTask)
        XCTAssertTrue(r?.text.contains("Pool.drain() blocks thread") == true, r?.text ?? "")
        XCTAssertTrue(r?.text.contains("use instead: await pool.drained()") == true, r?.text ?? "")
    }

    /// On the main actor the report says what is blocked: the main thread's jobs.
    func testBlockingOnTheMainActorNamesTheMainThread() async throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        await MainActor.run {
            Lockdep.mightBlockTask("Pool.drain()", alternative: "await pool.drained()")
        }
        let r = expectOne(.blockingInTask)
        XCTAssertTrue(r?.text.contains("it is the main thread, which runs the main actor's jobs") == true, r?.text ?? "")
    }

    /// A task locks on one thread and, after an `await` that resumes it on another, unlocks
    /// there: reported as a hold across a suspension point, and refused (the first thread
    /// still holds the mutex). Two single-thread executors make the hop certain.
    func testLockHeldAcrossSuspensionIsReportedAndRefused() async throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let mutex = CheckedMutex(class: .unique("session->lock"))
        let first = ThreadExecutor("executor-a")
        let second = ThreadExecutor("executor-b")
        await Task.detached {
            await withTaskExecutorPreference(first) { mutex.lock() }
            await withTaskExecutorPreference(second) { mutex.unlock() }
        }.value
        let r = expectOne(.lockHeldAcrossSuspension)
        XCTAssertEqual(r?.title, "WARNING: lock held across a suspension point!")
        XCTAssertEqual(r?.classes, ["session->lock"])
        XCTAssertEqual(r?.otherThread, "executor-a")
        XCTAssertEqual(r?.thread, "executor-b")
        XCTAssertTrue(r?.text.contains("held the lock across a suspension point") == true, r?.text ?? "")
        XCTAssertFalse(mutex.tryLock(), "the refused unlock released the mutex")
        // The thread that holds it can still release it.
        await withTaskExecutorPreference(first) { mutex.unlock() }
        XCTAssertTrue(mutex.tryLock())
        mutex.unlock()
        first.stop()
        second.stop()
    }

    /// A task takes a mutex on a thread and suspends holding it; another task on the same
    /// thread tries to take it: reported as the first task's hold across a suspension point
    /// (not as recursive locking), and refused. The first task later releases it normally.
    func testAnotherTaskTakingASuspendedHoldOnTheSameThread() async throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let mutex = CheckedMutex(class: .unique("session->lock"))
        let executor = ThreadExecutor("executor-x")
        let resumeHolder = await retakeSuspendedHold(mutex, on: executor)
        let r = expectOne(.lockHeldAcrossSuspension)
        XCTAssertTrue(r?.text.contains("suspended (an await) without releasing it") == true, r?.text ?? "")
        XCTAssertTrue(r?.text.contains("now runs on the same thread") == true, r?.text ?? "")
        await resumeHolder()
        XCTAssertEqual(collector.reports.count, 1, collector.reports.map(\.text).joined(separator: "\n"))
        XCTAssertTrue(mutex.tryLock(), "the holder's own release went through")
        mutex.unlock()
        executor.stop()
    }

    /// A blocking wait in a task that runs on an executor of its own (a task-executor
    /// preference) blocks a thread its code chose, not the pool: not reported.
    func testBlockingOnAnOwnExecutorIsNotReported() async {
        let executor = ThreadExecutor("blocking-executor")
        await Task.detached {
            await withTaskExecutorPreference(executor) {
                Lockdep.mightBlockTask("Pool.drain()", alternative: "await pool.drained()")
            }
        }.value
        expectSilent()
        executor.stop()
    }

    /// Every checked `lock()` reads the running task through the thread's slot of the runtime's
    /// current-task variable (no runtime call): it must name the same task the runtime does,
    /// inside a task and outside any (0).
    func testTaskSlotReadsTheRuntimesCurrentTask() async {
        await Task.detached {
            let t = ThreadState.current()
            #if arch(x86_64) && os(Linux)
            XCTAssertTrue(t.pointee.isTaskSlotKnown, "the current-task slot was not found: every lock() makes two runtime calls")
            #endif
            let task = TaskContext.currentTaskIfChecking(t)
            XCTAssertNotEqual(task, 0)
            XCTAssertEqual(task, TaskContext.currentTask)
        }.value
        let outside = ThreadProbe()
        let thread = Thread {
            let t = ThreadState.current()
            outside.set(TaskContext.currentTaskIfChecking(t), slotFound: t.pointee.isTaskSlotKnown)
        }
        thread.start()
        let (task, slotFound) = outside.wait()
        XCTAssertEqual(task, 0)
        #if arch(x86_64) && os(Linux)
        XCTAssertTrue(slotFound)
        #endif
    }

    /// Task numbers are unique: a task that locks and ends, and another (often at the same
    /// address) that unlocks on another thread, are two tasks (run many times).
    func testTaskIdentityIsNotTheAddress() async {
        let first = ThreadExecutor("executor-a")
        let second = ThreadExecutor("executor-b")
        for _ in 0..<50 {
            collector.clear()
            let mutex = CheckedMutex(class: .unique("session->lock"))
            await Task.detached { await withTaskExecutorPreference(first) { mutex.lock() } }.value
            await Task.detached { await withTaskExecutorPreference(second) { mutex.unlock() } }.value
            XCTAssertEqual(collector.kinds, [.unlockFromOtherThread])
            await withTaskExecutorPreference(first) { mutex.unlock() }
        }
        first.stop()
        second.stop()
    }

    /// Another task releasing a mutex that a different thread holds is the ordinary report.
    func testUnlockByAnotherTaskIsTheOrdinaryReport() async {
        let mutex = CheckedMutex(class: .unique("session->lock"))
        let first = ThreadExecutor("executor-a")
        let second = ThreadExecutor("executor-b")
        await Task.detached { await withTaskExecutorPreference(first) { mutex.lock() } }.value
        await Task.detached { await withTaskExecutorPreference(second) { mutex.unlock() } }.value
        expectOne(.unlockFromOtherThread)
        await withTaskExecutorPreference(first) { mutex.unlock() }
        first.stop()
        second.stop()
    }
}

/// A task executor with one thread of its own, so a test knows which thread a task runs on.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    init(_ name: String) {
        let thread = Thread { [self] in
            Lockdep.currentThreadName = name
            run()
        }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty { condition.unlock(); return }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// A task on `executor` takes `mutex` and suspends holding it; another task on the same
/// executor (so on the same thread) then takes and releases it. Returns with the first task
/// still suspended: what the caller calls to let it resume, release the mutex and end.
func retakeSuspendedHold(_ mutex: CheckedMutex, on executor: ThreadExecutor) async -> () async -> Void {
    let gate = Gate()
    let holder = Task.detached {
        await withTaskExecutorPreference(executor) {
            mutex.lock()
            await gate.wait()
            mutex.unlock()
        }
    }
    await gate.waitUntilWaiting()
    await Task.detached {
        await withTaskExecutorPreference(executor) { mutex.lock(); mutex.unlock() }
    }.value
    return { gate.open(); await holder.value }
}

/// A one-shot gate a task can wait at, and a test can see it waiting.
final class Gate: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Never>?
    private var opened = false

    func wait() async {
        await withCheckedContinuation { continuation in
            lock.lock()
            if opened {
                lock.unlock()
                continuation.resume()
                return
            }
            self.continuation = continuation
            lock.unlock()
        }
    }

    func waitUntilWaiting() async {
        while !lock.withLock({ continuation != nil }) { await Task.yield() }
    }

    func open() {
        lock.lock()
        opened = true
        let continuation = self.continuation
        self.continuation = nil
        lock.unlock()
        continuation?.resume()
    }
}

/// What a plain thread saw, handed back to the test.
private final class ThreadProbe: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var task: UInt = .max
    private var slotFound = false

    func set(_ task: UInt, slotFound: Bool) {
        self.task = task
        self.slotFound = slotFound
        done.signal()
    }

    func wait() -> (UInt, Bool) {
        done.wait()
        return (task, slotFound)
    }
}
