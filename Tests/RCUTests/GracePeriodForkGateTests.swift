#if canImport(Glibc)
import Glibc
#endif
import Foundation
import RCU
import RCUTestSupport
import Synchronization
import XCTest

/// memb's, mb's and qsbr's `synchronize_rcu` hold liburcu's grace-period and registry mutexes
/// for the whole wait, and liburcu has no fork hook for them: a child forked meanwhile got both
/// locked by a thread it does not have, and its first grace period waited for ever (3 children
/// in 200 while another thread synchronized). The shim's grace-period gate makes fork() wait
/// for the synchronize calls in progress. Each test runs in a fresh process: no other test's
/// registered readers make the children refuse grace periods.
final class GracePeriodForkGateTests: XCTestCase {

    /// How long the suite's process waits for a test's fresh process (longer than its alarm).
    private static let freshProcessTimeout: Duration = .seconds(150)

    func testChildrenForkedWhileAnotherThreadSynchronizesCanSynchronize() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard inFreshTestProcess else {
            let test = "RCUTests.GracePeriodForkGateTests/testChildrenForkedWhileAnotherThreadSynchronizesCanSynchronize"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: Self.freshProcessTimeout))
        }
        alarm(120)
        checkChildrenCanSynchronize(RCUMemb.self)
        checkChildrenCanSynchronize(RCUMemoryBarrier.self)
        checkChildrenCanSynchronize(RCUQSBR.self)
    }

    /// A thread inside a read section that forks while another thread waits for a grace
    /// period: that wait cannot end before the fork does, so fork() must not wait for it
    /// (it returns, and the shim says why the child's grace periods may never end).
    func testForkInsideAReadSectionDoesNotWaitForTheGracePeriodItHoldsUp() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard inFreshTestProcess else {
            let test = "RCUTests.GracePeriodForkGateTests/testForkInsideAReadSectionDoesNotWaitForTheGracePeriodItHoldsUp"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: Self.freshProcessTimeout))
        }
        alarm(60)
        RCUMemb.registerThread()
        let synchronizing = Atomic<Bool>(false)
        let synchronizer = startThread(named: "synchronizes") {
            RCUMemb.read { _ in synchronizing.store(true, ordering: .sequentiallyConsistent) }
            RCUMemb.synchronize()
        }
        var child: pid_t = 0
        RCUMemb.read { _ in
            while !synchronizing.load(ordering: .sequentiallyConsistent) { usleep(1_000) }
            usleep(50_000)   // the synchronize call is waiting for this section
            child = fork()
            if child == 0 { _exit(0) }
        }
        synchronizer.wait()
        XCTAssertEqual(waitForChild(child, timeout: .seconds(15)).status, 0)
    }

    /// One thread synchronizes in a loop while this one forks: every child's own grace
    /// period must end.
    private func checkChildrenCanSynchronize<F: RCUFlavor>(_: F.Type) {
        let running = Atomic<Bool>(true)
        let synchronizer = startThread(named: "synchronizes") {
            while running.load(ordering: .relaxed) { F.synchronize() }
        }
        usleep(20_000)
        let children = forkChildren(100, alarm: 10, timeout: .seconds(15)) { F.synchronize() }
        running.store(false, ordering: .relaxed)
        synchronizer.wait()
        XCTAssertEqual(children.hung, 0, "\(F.self): children whose synchronize() never returned")
        XCTAssertEqual(children.failed, 0, "\(F.self): children that did not exit 0")
    }
}
