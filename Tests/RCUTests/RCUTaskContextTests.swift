import Foundation
import Lockdep
import RCU
import XCTest

/// Blocking grace-period waits made from a Swift task are reported by Lockdep's task-context
/// check, naming the async call to use instead; the same calls on a plain thread are not.
final class RCUTaskContextTests: XCTestCase {
    private var recorder: MisuseRecorder!

    override func setUpWithError() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        Lockdep.resetForTesting()
        recorder = MisuseRecorder()
    }

    override func tearDown() { recorder?.stop() }

    func testBlockingWaitsInTaskAreReportedWithTheAsyncAlternative() async {
        let pointer = SharedPointer()
        await Task.detached {
            RCUMemb.synchronize()
            RCUQSBR.barrier()
            RCUBulletproof.synchronize(since: RCUBulletproof.gracePeriodCookie())
            pointer.value.replaceAndSynchronize(with: Box())
            RCUMemb.deferBarrier()
        }.value
        let texts = recorder.lockdepReports.filter { $0.kind == .blockingInTask }.map(\.text)
        XCTAssertEqual(texts.count, 5, texts.joined(separator: "\n"))
        let expected = [
            ("RCUMemb.synchronize()", "try await RCUMemb.synchronize()"),
            ("RCUQSBR.barrier()", "try await RCUQSBR.barrier()"),
            ("RCUBulletproof.synchronize(since:)", "try await RCUBulletproof.synchronize(since:)"),
            ("RCUMemb.replaceAndSynchronize(with:)", "try await pointer.replaceAndSynchronize(with:)"),
            ("RCUMemb.deferBarrier()", "then try await RCUMemb.barrier()"),
        ]
        for (call, alternative) in expected {
            XCTAssertTrue(texts.contains { $0.contains("\(call) blocks thread") && $0.contains(alternative) },
                          "\(call) not reported with \(alternative):\n\(texts.joined(separator: "\n"))")
        }
    }

    /// In main.swift's top-level code `try await RCUMemb.synchronize()` compiles to the blocking
    /// form: the report must not just tell the user to write what they wrote.
    func testBlockingWaitFromMainSwiftSaysWhyTheAsyncFormWasNotPicked() async {
        await Task.detached {
            RCUMemb.synchronize(fileID: "Client/main.swift", line: 7)
        }.value
        let texts = recorder.lockdepReports.filter { $0.kind == .blockingInTask }.map(\.text)
        XCTAssertEqual(texts.count, 1, texts.joined(separator: "\n"))
        XCTAssertTrue(texts.first?.contains("try await RCUMemb.synchronize() from an async function") == true,
                      texts.joined(separator: "\n"))
        XCTAssertTrue(texts.first?.contains("main.swift's top-level code") == true, texts.joined(separator: "\n"))
    }

    func testBlockingWaitsOnAThreadAreNotReported() {
        onThread(named: "plain") {
            RCUMemb.synchronize()
            RCUQSBR.barrier()
        }
        XCTAssertTrue(recorder.lockdepReports.isEmpty, recorder.lockdepReports.map(\.text).joined(separator: "\n"))
    }

    /// An awaited grace period under a lock that readers take inside their sections is the
    /// same deadlock as a blocking one (the task would never resume): Lockdep sees it too.
    func testAwaitedSynchronizeUnderALockReadersTakeIsACycle() async {
        let mutex = CheckedMutex(class: .unique("config->mutex"))
        onThread(named: "reader") { RCUMemb.read { _ in mutex.withLock {} } }
        // One thread, so the task resumes where it took the lock (a hold across an await
        // that moved threads would be reported as such too).
        let executor = OneThreadExecutor()
        await withTaskExecutorPreference(executor) {
            mutex.lock()
            try? await RCUMemb.synchronize()
            mutex.unlock()
        }
        executor.stop()
        // The reader's mutex inside its section is reported as it is for any reader.
        XCTAssertEqual(recorder.lockdepReports.map(\.kind), [.sleepInInvalidContext, .circularDependency],
                       recorder.lockdepReports.map(\.text).joined(separator: "\n"))
    }

    /// Choosing callback workers is configuration, not a wait in a task's work: not reported.
    func testUseCallbackWorkersInATaskIsNotReported() async throws {
        try await Task.detached {
            try RCUBulletproof.useCallbackWorkers(.perThread)
            try RCUBulletproof.useCallbackWorkers(.shared)
        }.value
        XCTAssertTrue(recorder.lockdepReports.isEmpty, recorder.lockdepReports.map(\.text).joined(separator: "\n"))
    }

    func testAwaitedWaitsAreNotReported() async throws {
        try await RCUMemb.synchronize()
        try await RCUQSBR.barrier()
        try await RCUBulletproof.synchronize(since: RCUBulletproof.startGracePeriod())
        XCTAssertTrue(recorder.lockdepReports.isEmpty, recorder.lockdepReports.map(\.text).joined(separator: "\n"))
    }
}

private final class Box: Sendable {}

private final class SharedPointer: Sendable {
    let value = RCUPointer<Box, RCUMemb>(Box())
}

/// A task executor with one thread of its own.
final class OneThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    init() {
        Thread { [self] in run() }.start()
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
