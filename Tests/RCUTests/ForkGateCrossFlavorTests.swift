#if canImport(Glibc)
import Glibc
#endif
import Foundation
import RCU
import RCUTestSupport
import XCTest

/// The fork gate attacked across flavors: a callback of one flavor that retires into
/// another while a third thread forks.
final class ForkGateCrossFlavorTests: XCTestCase {
    private static let freshVariable = "SWIFT_RCU_FORK_GATE_FRESH"

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
        guard ProcessInfo.processInfo.environment[Self.freshVariable] != nil else {
            return runFresh("RCUTests.ForkGateCrossFlavorTests/testMembCallbackRetiringIntoBulletproofDuringFork")
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

    private func runFresh(_ test: String, file: StaticString = #filePath, line: UInt = #line) {
        var environment = ProcessInfo.processInfo.environment
        environment[Self.freshVariable] = "1"
        let arguments = [CommandLine.arguments[0], test]
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        XCTAssertEqual(posix_spawn(&child, "/proc/self/exe", nil, nil, argv, envp), 0, file: file, line: line)
        guard child > 0 else { return }
        let (status, ended) = waitForChild(child, timeout: .seconds(90))
        XCTAssertTrue(ended, "\(test): the fresh process hung (killed)", file: file, line: line)
        XCTAssertEqual(status & 0x7F, 0, "\(test): killed by signal \(status & 0x7F) (14: SIGALRM, a hang)",
                       file: file, line: line)
        XCTAssertEqual((status >> 8) & 0xFF, 0, "\(test) failed in its fresh process", file: file, line: line)
    }
}
