import Foundation
import Synchronization
import TestSupport
import XCTest
@testable import Lockdep

/// Flags shared between the test's threads.
private final class InitializerProgress: Sendable {
    let entered = Atomic<Bool>(false)
    let finished = Atomic<Bool>(false)
}

/// A one-time initializer that takes its time and creates a Lockdep class (the graph lock), as
/// RCU's read maps do on first use.
private enum SlowOnce {
    static let progress = InitializerProgress()
    static let map: LockdepMap = {
        progress.entered.store(true, ordering: .releasing)
        usleep(300_000)
        let map = LockdepMap("fork-initializer-test-map")
        progress.finished.store(true, ordering: .releasing)
        return map
    }()
}

/// ``ForkHooks/initializing(_:)``: no `fork()` is made while a bracketed initializer runs, so a
/// child never inherits a once half done.
final class ForkInitializerTests: LockdepTestCase {
    func testForkWaitsForAnInitializerInProgress() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        runInFreshTestProcess("LockdepTests.ForkInitializerTests/testForkWaitsInAFreshProcess")
    }

    /// Runs only in the fresh process of the test above. Another thread is inside the
    /// initializer (300 ms) when this one forks: the fork returns after it finished, and the
    /// child's own first use of the value returns at once instead of waiting in the once for a
    /// thread the child does not have.
    func testForkWaitsInAFreshProcess() throws {
        guard inFreshTestProcess else { throw XCTSkip("runs in the fresh process of testForkWaitsForAnInitializerInProgress") }
        // A child runs only code its parent ran (see ForkHooks): the bracket's path, once.
        ForkHooks.initializing { _ = LockdepMap("fork-initializer-rehearsal") }
        let initializer = Thread { ForkHooks.initializing { _ = SlowOnce.map } }
        initializer.start()
        while !SlowOnce.progress.entered.load(ordering: .acquiring) { usleep(100) }
        let status = forkedChildExitStatus(timeout: .seconds(10)) {
            alarm(8)
            guard SlowOnce.progress.finished.load(ordering: .acquiring) else { return 1 }
            _ = SlowOnce.map
            return 0
        }
        XCTAssertTrue(SlowOnce.progress.finished.load(ordering: .acquiring),
                      "fork() returned while another thread was inside a bracketed initializer")
        XCTAssertEqual(status, 0, "the child (1: forked mid-initializer; nil: hung or killed)")
    }

    func testForkFromInsideAnInitializerDoesNotWaitForItself() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        runInFreshTestProcess("LockdepTests.ForkInitializerTests/testForkFromInsideInAFreshProcess")
    }

    /// Runs only in the fresh process of the test above: a fork from inside the bracket, with a
    /// nested bracket, returns, and the child can bracket an initializer of its own.
    func testForkFromInsideInAFreshProcess() throws {
        guard inFreshTestProcess else { throw XCTSkip("runs in the fresh process of testForkFromInsideAnInitializerDoesNotWaitForItself") }
        var status: Int32?
        ForkHooks.initializing {
            ForkHooks.initializing {
                status = forkedChildExitStatus(timeout: .seconds(10)) {
                    alarm(8)
                    ForkHooks.initializing { _ = LockdepMap("fork-initializer-child-map") }
                    return 0
                }
            }
        }
        XCTAssertEqual(status, 0, "the child of a fork made inside an initializer (nil: hung or killed)")
        // And the parent's bracket still works after it.
        let finished = Atomic<Bool>(false)
        ForkHooks.initializing { finished.store(true, ordering: .relaxed) }
        XCTAssertTrue(finished.load(ordering: .relaxed))
    }
}
