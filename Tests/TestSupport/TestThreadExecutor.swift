import Foundation
public import Testing

/// One thread that runs the jobs of the tasks that prefer it, one at a time.
public final class TestThreadExecutor: TaskExecutor, @unchecked Sendable {
    /// The thread Swift Testing's synchronous tests run on (see ``OnTestThread``).
    public static let shared = TestThreadExecutor(named: "test-thread")

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    /// An executor whose jobs run on a new thread named `name`, for as long as the process runs.
    public init(named name: String) {
        let thread = Thread { [self] in
            setCurrentThreadName(name)
            run()
        }
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// Runs each test case on ``TestThreadExecutor/shared``, a thread of its own, as XCTest runs a
/// test on the main thread.
///
/// Swift Testing runs a synchronous test in a task on the cooperative pool, where a grace
/// period or barrier wait blocks a pool thread: Lockdep reports that ("blocking call in async
/// task context"). A task with a task-executor preference runs on the thread its code chose,
/// and may block it. Not for tests whose tasks must spread over the pool: the preference is
/// inherited by child tasks, which then share the one thread.
public struct OnTestThread: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        testCase == nil ? nil : self
    }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTaskExecutorPreference(TestThreadExecutor.shared) { try await function() }
    }
}

extension Trait where Self == OnTestThread {
    /// Runs each test case on a thread of its own, where it may block (``OnTestThread``).
    public static var onTestThread: Self { Self() }
}
