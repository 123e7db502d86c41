#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Lockdep
import RCU
import RCUTestSupport
import XCTest

/// The package's fork hooks (``ForkHooks``) run as one group at a fixed place among
/// liburcu's: in the child, before liburcu's hook restarts the call_rcu workers, whose first
/// callback may take a package lock (the hang that reverted the first Lockdep fork handlers:
/// a restarted worker slept on the graph lock that a later child handler re-initialized).
final class ForkHookOrderTests: XCTestCase {
    /// The child's thread count when its package hooks ran (written in the child's only thread).
    nonisolated(unsafe) private static var threadsAtChildHook = -1

    /// Registered the first time a test needs it: after liburcu's hooks for flavors already
    /// used, as the package's own types register theirs (lazily, on first use).
    private static let countingHook: Void = ForkHooks.register(
        prepare: nil, parent: nil, child: { ForkHookOrderTests.threadsAtChildHook = threadCount() })

    /// Threads of the calling process (entries of /proc/self/task).
    private static func threadCount() -> Int {
        guard let directory = opendir("/proc/self/task") else { return -1 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { count += 1 }
        }
        return count
    }

    func testPackageChildHooksRunBeforeLiburcuRestartsTheCallbackWorkers() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        // bp: liburcu's child hook always restarts its worker (its reader registry is cleaned
        // at fork). A retire installs liburcu's hooks and starts the worker in the parent.
        RCUBulletproof.retire(Filler())
        RCUBulletproof.barrier()
        _ = Self.countingHook
        // Also rehearses the hook's code in the parent (see ForkHooks: the child runs only code the parent has run).
        XCTAssertGreaterThan(Self.threadCount(), 1, "the parent has its call_rcu worker and the test runner's threads")
        let status = forkExitStatus {
            let atHook = Self.threadsAtChildHook
            let afterFork = Self.threadCount()
            // Exactly the forking thread when the package's hooks ran, and liburcu's worker
            // started after them (the check would prove nothing if it never started).
            if atHook != 1 { return Int32(10 + min(atHook, 100)) }
            if afterFork < 2 { return 9 }
            RCUBulletproof.retire(Filler())
            RCUBulletproof.barrier()
            return 0
        }
        XCTAssertEqual(status, 0, "9: liburcu started no worker in the child; 10+n: n threads ran when the package's child hooks did; nil: the child hung")
    }

    final class Filler: Sendable {}

    /// The child's exit status, or nil when it hung (killed after 20 s) or died of a signal.
    private func forkExitStatus(_ child: () -> Int32) -> Int32? {
        let pid = fork()
        if pid == 0 {
            alarm(20)
            _exit(child())
        }
        precondition(pid > 0, "fork failed")
        var status: Int32 = 0
        let deadline = ContinuousClock.now + .seconds(25)
        while ContinuousClock.now < deadline {
            if waitpid(pid, &status, WNOHANG) == pid { return status & 0x7f == 0 ? (status >> 8) & 0xff : nil }
            usleep(1_000)
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
        return nil
    }
}
