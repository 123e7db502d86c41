import Foundation
import RCU
import Synchronization
import Testing
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The stall detector's attribution of stalls to flavors, and its life across `fork()`.
final class StallDetectorTests: XCTestCase {
    /// Was: in a child of `fork()` the detector believed its watchdog was running (the flag was
    /// inherited, the thread was not), so a stall there was never reported. Now the child starts
    /// its own watchdog on its first wait, with the parent's threshold and handler: a child
    /// whose main thread waits in `synchronize()` behind a reader thread gets the report.
    func testWatchdogRestartsInForkedChild() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard try isolated("testWatchdogRestartsInForkedChild") else { return }
        RCUStallDetector.threshold = .milliseconds(200)
        RCUStallDetector.reportHandler = .custom { stall in
            guard stall.call == "synchronize()", stall.blockingReaders.map(\.name) == ["child-reader"] else { return }
            _exit(42)
        }
        RCUMemb.synchronize()          // the watchdog runs, and this thread has a wait slot
        XCTAssertEqual(RCUMemb.registeredThreadCount, 0, "no other registered reader at the fork")

        let child = fork()
        if child == 0 {
            alarm(10)                  // no report: ends the child with SIGALRM instead of hanging
            let inside = Flag()
            startThread(named: "child-reader") {
                RCUMemb.read { _ in
                    inside.set()
                    sleep(30)
                }
            }
            while !inside.isSet { usleep(1_000) }
            RCUMemb.synchronize()      // held up by child-reader: only the stall handler ends it
            _exit(1)
        }
        XCTAssertGreaterThan(child, 0, "fork failed")
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child, &status, 0), child)
        let signal = status & 0x7f
        XCTAssertEqual(signal, 0, "the child was killed by signal \(signal) (SIGALRM: no stall report)")
        XCTAssertEqual((status >> 8) & 0xff, 42, "the child's stall handler ended it (status \(status))")
    }

    /// Was: only a blocking wait (or `enable()`) started the watchdog, so a program that only
    /// awaited hung behind a stuck reader without a word. In a fresh process that never makes a
    /// blocking wait, an awaited `synchronize()` behind a held reader is reported, naming it.
    func testAwaitedWaitStartsTheWatchdog() async throws {
        guard try isolated("testAwaitedWaitStartsTheWatchdog") else { return }
        let stalls = Mutex<[RCUStallDetector.Stall]>([])
        RCUStallDetector.threshold = .milliseconds(200)
        RCUStallDetector.reportHandler = .custom { stall in stalls.withLock { $0.append(stall) } }
        let reader = HeldReader<RCUMemb>(named: "stuck-reader")
        let waiter = Task { try await RCUMemb.synchronize() }
        let deadline = ContinuousClock.now + .seconds(10)
        func reported() -> Bool {
            stalls.withLock { $0.contains { $0.kind == .memb && $0.blockingReaders.map(\.name) == ["stuck-reader"] } }
        }
        while !reported() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        reader.release()
        try await waiter.value
        XCTAssertTrue(reported(), "no stall naming the held reader: \(stalls.withLock { $0 })")
    }

    /// Runs `test` in a fresh process and returns `false`, or returns `true` when already in it.
    private func isolated(_ test: String) throws -> Bool {
        if IsolatedTest.isChild { return true }
        let run = try IsolatedTest.run("RCUTests.StallDetectorTests/\(test)")
        XCTAssertEqual(run.status, 0, "isolated \(test) failed:\n\(run.output)")
        XCTAssertTrue(run.output.contains("Executed 1 test, with 0 failures"), run.output)
        return false
    }
}

extension PerFlavor {
    @Suite(.onTestThread) struct StallDetectorTests {
        /// A stall is attributed to the flavor that stalled (by its kind), with that flavor's
        /// blocking reader, for each of the four flavors.
        @Test(arguments: allFlavors)
        func stallIsAttributedToItsFlavor(_ flavor: any RCUFlavor.Type) {
            withCollectedStalls(threshold: .milliseconds(100)) { stalls in checkAttribution(flavor, stalls) }
        }

        private func checkAttribution<F: RCUFlavor>(_: F.Type, _ stalls: Locked<[RCUStallDetector.Stall]>) {
            let waiterName = "waiter-\(F.name)"
            let reader = HeldReader<F>(named: "reader-\(F.name)")
            let waiter = startThread(named: waiterName) { F.synchronize() }
            func seen() -> RCUStallDetector.Stall? { stalls.withLock { $0.first { $0.waiterName == waiterName } } }
            let deadline = Date().addingTimeInterval(10)
            while seen() == nil && Date() < deadline { usleep(10_000) }
            reader.release()
            waiter.wait()
            guard let stall = seen() else {
                Issue.record("\(F.name): no stall reported: \(stalls.withLock { $0 })")
                return
            }
            #expect(stall.kind == F.kind, "\(stall.description)")
            #expect(stall.flavor == F.name, "\(stall.description)")
            #expect(stall.call == "synchronize()", "\(stall.description)")
            // bp too: its read lock enters a thread in the shim's registry on its first section.
            #expect(stall.blockingReaders.map(\.name) == ["reader-\(F.name)"], "\(stall.description)")
            #expect(stall.description.hasPrefix("INFO: rcu_\(F.name) detected stall"), "\(stall.description)")
        }
    }
}
