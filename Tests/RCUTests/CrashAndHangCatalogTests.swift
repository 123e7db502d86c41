import Foundation
import Lockdep
import RCU
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// One test per crash or hang that used to be reachable from the public API, each showing
/// what a user gets now. Tests whose process could not survive the old behaviour (an
/// abort at exit, a deadlock no thread can break) run in a fresh test process (the test
/// binary re-run with a filter) and check how that process ended.
final class CrashAndHangCatalogTests: XCTestCase {
    /// Was: liburcu's `rcu_defer_exit` destructor asserted at exit that no thread was still
    /// registered for `defer_rcu`, aborting every process whose main thread, call_rcu worker
    /// or any still-running thread had called `deferRetire`. Now the process exits normally
    /// and every deferred object is released, whatever thread deferred it.
    func testDeferRetireOnMainThreadFromCallbackAndLiveThreadExitsCleanly() throws {
        guard let output = try isolated("testDeferRetireOnMainThreadFromCallbackAndLiveThreadExitsCleanly") else {
            let ledger = Ledger()
            let parked = DispatchSemaphore(value: 0)
            for (index, flavor) in allFlavors.enumerated() {
                deferEverywhere(flavor, ledger: ledger, base: index * 10, parked: parked)
            }
            XCTAssertEqual(ledger.freedCount, allFlavors.count * 3, "every deferred object was released")
            XCTAssertEqual(ledger.doubleFrees, 0)
            // Returning ends the process with threads still parked that deferred: exit must not abort.
            return
        }
        XCTAssertTrue(output.contains("Executed 1 test, with 0 failures"), output)
    }

    private func deferEverywhere<F: RCUFlavor>(_: F.Type, ledger: Ledger, base: Int, parked: DispatchSemaphore) {
        F.deferRetire(Tracked(id: base, ledger: ledger))                   // the main thread
        let inCallback = Tracked(id: base + 1, ledger: ledger)
        F.retire { F.deferRetire(inCallback) }                              // a call_rcu worker
        let deferred = DispatchSemaphore(value: 0)
        startThread(named: "parked-\(F.name)") {                           // alive at exit
            F.deferRetire(Tracked(id: base + 2, ledger: ledger))
            deferred.signal()
            parked.wait()
        }
        deferred.wait()
        F.barrier()                // the callback has deferred its object
        F.deferBarrier()           // every thread's batch handed over and run
    }

    /// Was: a threshold whose quarter or microsecond count overflowed trapped in the watchdog
    /// thread. Now any threshold is valid: tiny and negative ones are raised to 1 ms, huge
    /// ones mean "never", and the watchdog keeps working and takes a new threshold within 250 ms.
    func testStallThresholdAcceptsAnyDuration() {
        withCollectedStalls { stalls in
            RCUStallDetector.enable()
            for huge in [Duration.seconds(Int64.max), Duration(secondsComponent: .max, attosecondsComponent: .max - 1)] {
                RCUStallDetector.threshold = huge
                XCTAssertEqual(RCUStallDetector.threshold, huge)
                usleep(300_000)        // at least one look with it
            }
            RCUStallDetector.threshold = .zero
            XCTAssertEqual(RCUStallDetector.threshold, .milliseconds(1), "zero is raised to 1 ms")
            RCUStallDetector.threshold = .seconds(-5)
            XCTAssertEqual(RCUStallDetector.threshold, .milliseconds(1), "negative is raised to 1 ms")

            // The watchdog survived and reports with a normal threshold.
            RCUStallDetector.threshold = .milliseconds(100)
            let reader = HeldReader<RCUMemb>(named: "thr-reader")
            let waiter = startThread(named: "thr-waiter") { RCUMemb.synchronize() }
            let deadline = Date().addingTimeInterval(5)
            while stalls.withLock({ $0.isEmpty }) && Date() < deadline { usleep(10_000) }
            reader.release()
            waiter.wait()
            let reported = stalls.withLock { $0 }
            XCTAssertTrue(reported.contains { $0.call == "synchronize()" && $0.waiterName == "thr-waiter" },
                          "\(reported)")
        }
    }

    /// Was: a call_rcu callback blocked on a lock stalled `barrier()` with a report that named
    /// neither the callback nor the lock. Now the report names the barrier's waiter, the
    /// worker stuck in a callback and for how long, and the checked lock it is blocked on
    /// with that lock's holder.
    func testBarrierStalledByCallbackBlockedOnCheckedMutexNamesWorkerAndLock() {
        let recorder = MisuseRecorder()       // the callback's sleeping lock in softirq context is a Lockdep report
        defer { recorder.stop() }
        withCollectedStalls(threshold: .milliseconds(200)) { stalls in
            let lock = CheckedMutex("catalog.callback-lock")
            let held = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            let holder = startThread(named: "lock-holder") {
                lock.lock()
                held.signal()
                release.wait()
                lock.unlock()
            }
            held.wait()
            let ran = Counter()
            RCUMemb.retire {
                lock.withLock { ran.bump(RCUMemb.self) }
            }
            let waiter = startThread(named: "barrier-waiter") { RCUMemb.barrier() }

            let deadline = Date().addingTimeInterval(10)
            // The lock a callback is blocked on comes from Lockdep (`pendingAcquire`), so only
            // with checks compiled in; every build names the barrier's waiter and the worker.
            func blocked() -> RCUStallDetector.Stall? {
                stalls.withLock {
                    $0.first {
                        $0.call == "barrier()" && $0.runningCallbacks.contains { $0.blockedOn != nil || !Lockdep.checksCompiledIn }
                    }
                }
            }
            while blocked() == nil && Date() < deadline { usleep(20_000) }
            release.signal()
            holder.wait()
            waiter.wait()
            XCTAssertEqual(ran.runs.load(ordering: .relaxed), 1, "the callback finished once the lock was released")

            guard let stall = blocked() else {
                return XCTFail("no barrier stall naming a blocked callback: \(stalls.withLock { $0 })")
            }
            let text = stall.description
            XCTAssertEqual(stall.waiterName, "barrier-waiter", text)
            XCTAssertTrue(text.contains("barrier() on thread \"barrier-waiter\""), text)
            XCTAssertTrue(text.contains("call_rcu worker"), text)
            XCTAssertTrue(text.contains("has been running one callback for"), text)
            if Lockdep.checksCompiledIn {
                XCTAssertTrue(text.contains("blocked on lock catalog.callback-lock held by \"lock-holder\""), text)
                XCTAssertEqual(stall.runningCallbacks.first?.blockedOn?.holderName, "lock-holder")
            }
        }
    }

    /// Was: a callback that called `Thread.exit()` took its call_rcu worker with it; callbacks
    /// never ran again and `barrier()` hung with a report that named no one ("no registered
    /// reader found in the way"). Now the report names the worker that exited inside a
    /// callback, and its flavor. Nothing can bring the worker back, so it runs in its own
    /// process, which the stall handler ends after printing.
    func testWorkerThatExitsInsideCallbackIsNamedInBarrierStall() throws {
        // pthread_exit unwinds the callback's frames without their cleanup, so ASan keeps
        // their stack poison and flags the exit-time slot removal that reuses that stack.
        try XCTSkipIf(runningUnderAddressSanitizer, "AddressSanitizer keeps stale stack poison across pthread_exit")
        guard let output = try isolated("testWorkerThatExitsInsideCallbackIsNamedInBarrierStall") else {
            RCUStallDetector.threshold = .milliseconds(200)
            RCUStallDetector.reportHandler = .custom { stall in
                guard stall.call == "barrier()", !stall.exitedWorkers.isEmpty else { return }
                FileHandle.standardError.write(Data("CATALOG-STALL: \(stall.description)\n".utf8))
                _exit(0)
            }
            let exiting = DispatchSemaphore(value: 0)
            RCUMemb.retire {
                exiting.signal()
                Thread.exit()
            }
            exiting.wait()
            startThread(named: "barrier-waiter") { RCUMemb.barrier() }
            sleep(20)
            XCTFail("no barrier stall naming the exited worker within 20 s")
            return
        }
        let line = output.split(separator: "\n").first { $0.hasPrefix("CATALOG-STALL: ") }.map(String.init) ?? ""
        XCTAssertTrue(line.contains("INFO: rcu_memb detected stall: barrier() on thread \"barrier-waiter\""), output)
        XCTAssertTrue(line.contains("exited inside a memb callback"), output)
        XCTAssertNotNil(line.range(of: #"call_rcu worker "[^"]*" \(tid [1-9][0-9]*\) exited"#, options: .regularExpression),
                        output)
    }

    /// Runs `test` in a fresh test process and returns its output, or `nil` when already in it.
    private func isolated(_ test: String) throws -> String? {
        if IsolatedTest.isChild { return nil }
        let run = try IsolatedTest.run("RCUTests.CrashAndHangCatalogTests/\(test)")
        XCTAssertEqual(run.reason, .exit, "isolated \(test) was killed by a signal:\n\(run.output)")
        XCTAssertEqual(run.status, 0, "isolated \(test) failed:\n\(run.output)")
        return run.output
    }
}
