#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import TestSupport
import XCTest
@testable import Lockdep
@testable import RCU

/// RCU's one-time values whose first use registers `fork()` hooks (``ForkHooks/makeOnce(_:_:)``):
/// a first use racing a fork being prepared must not leave the child a lock held by a parent
/// thread. Each check runs in a fresh process (the value not yet made), where
/// ``raceFirstUseWithFork(firstUse:child:)`` holds the fork in its prepare step while another
/// thread makes the value and takes its lock. Before the values were made inside the bracket,
/// every check's child hung (its hook missed the fork).
final class ForkInitializerRaceTests: XCTestCase {
    private func runFresh(_ method: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        XCTAssertNil(failureOfFreshTestProcess("RCUTests.ForkInitializerRaceTests/\(method)", timeout: .seconds(120)),
                     file: file, line: line)
    }

    private func skipUnlessFresh() throws {
        guard inFreshTestProcess else { throw XCTSkip("runs in a fresh process of the test without `InAFreshProcess`") }
    }

    private func check(_ race: FirstUseForkRace, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(race.firstUseBeforeFork, "the first use finished while a fork was being prepared", file: file, line: line)
        XCTAssertNil(race.childFailure, file: file, line: line)
        XCTAssertTrue(race.firstUseFinished, "the first use did not finish after the fork", file: file, line: line)
    }

    // MARK: RCUGracePeriodSequence

    func testGracePeriodSequencesFirstUseRacingAFork() throws { try runFresh("testGracePeriodSequencesInAFreshProcess") }

    func testGracePeriodSequencesInAFreshProcess() throws {
        try skipUnlessFresh()
        check(raceFirstUseWithFork(
            firstUse: {
                let lock = RCUGracePeriodSequence.of(.memb).state.lock
                lock.lock()
                return { lock.unlock() }
            },
            child: {
                RCUGracePeriodSequence.of(.memb).state.withLock { _ in }
                return 0
            }))
    }

    // MARK: RCUBacklogState

    func testBacklogStatesFirstUseRacingAFork() throws { try runFresh("testBacklogStatesInAFreshProcess") }

    func testBacklogStatesInAFreshProcess() throws {
        try skipUnlessFresh()
        check(raceFirstUseWithFork(
            firstUse: {
                let lock = RCUBacklogState.of(.memb).policy.lock
                lock.lock()
                return { lock.unlock() }
            },
            child: { RCUMemb.backlogPolicy == .standard ? 0 : 1 }))
    }

    // MARK: RCUInlineReclaimBatch

    func testInlineReclaimBatchesFirstUseRacingAFork() throws { try runFresh("testInlineReclaimBatchesInAFreshProcess") }

    func testInlineReclaimBatchesInAFreshProcess() throws {
        try skipUnlessFresh()
        check(raceFirstUseWithFork(
            firstUse: {
                let lock = RCUInlineReclaimBatch.of(.memb).lock
                lock.lock()
                return { lock.unlock() }
            },
            child: { RCUInlineReclaimBatch.of(.memb).isEmpty ? 0 : 1 }))
    }

    // MARK: RCUMisuse

    func testMisuseHandlerFirstUseRacingAFork() throws { try runFresh("testMisuseHandlerInAFreshProcess") }

    func testMisuseHandlerInAFreshProcess() throws {
        try skipUnlessFresh()
        check(raceFirstUseWithFork(
            firstUse: {
                let lock = RCUMisuse.handler.lock
                lock.lock()
                return { lock.unlock() }
            },
            child: {
                if case .trap = RCUMisuse.reportHandler { return 0 }
                return 1
            }))
    }

    // MARK: RCUStallDetector

    func testStallDetectorFirstUseRacingAFork() throws { try runFresh("testStallDetectorInAFreshProcess") }

    /// Its hooks used to be registered when the watchdog first started: a thread setting the
    /// threshold before any grace period left a forked child the state's lock held.
    func testStallDetectorInAFreshProcess() throws {
        try skipUnlessFresh()
        check(raceFirstUseWithFork(
            firstUse: {
                let lock = RCUStallDetector.state.lock
                lock.lock()
                return { lock.unlock() }
            },
            child: { RCUStallDetector.threshold == .seconds(2) ? 0 : 1 }))
    }

    /// The same without a race: a thread holds the state's lock (setting the threshold) at a
    /// fork before any grace period started the watchdog. The fork waits for it.
    func testStallDetectorLockHeldAtAForkBeforeTheWatchdogStarted() throws {
        try runFresh("testStallDetectorLockHeldInAFreshProcess")
    }

    func testStallDetectorLockHeldInAFreshProcess() throws {
        try skipUnlessFresh()
        let holding = Locked(false)
        let holder = Thread {
            let lock = RCUStallDetector.state.lock
            lock.lock()
            holding.withLock { $0 = true }
            usleep(300_000)
            lock.unlock()
        }
        holder.start()
        while !holding.withLock({ $0 }) { usleep(1_000) }
        let children = forkChildren(1, alarm: 5, timeout: .seconds(15)) {
            _exit(RCUStallDetector.threshold == .seconds(2) ? 0 : 1)
        }
        XCTAssertEqual(children.exitedZero, 1, "hung: \(children.hung), failed: \(children.failedStatuses)")
    }
}

/// Set by a ``DeferredInChild``'s deinit (in a forked child).
private let deferredReleasedInChild = Atomic<Bool>(false)

private final class DeferredInChild: Sendable {
    deinit { deferredReleasedInChild.store(true, ordering: .releasing) }
}

/// The shim's deferRetire registers its fork hooks (the defer lock, the flusher) in the once
/// of a process's first deferRetire, now bracketed like the Swift values above.
final class ForkInitializerDeferTests: XCTestCase {
    func testFirstDeferRetireRacingAFork() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        XCTAssertNil(failureOfFreshTestProcess("RCUTests.ForkInitializerDeferTests/testFirstDeferRetireInAFreshProcess",
                                               timeout: .seconds(120)))
    }

    /// A hook that missed the fork left the child the parent's "flusher running" with no
    /// flusher: the child's deferred object was never released.
    func testFirstDeferRetireInAFreshProcess() throws {
        guard inFreshTestProcess else { throw XCTSkip("runs in the fresh process of testFirstDeferRetireRacingAFork") }
        // The child's call_rcu path is code the parent ran (on a thread that is gone before the
        // fork, so the child inherits no registered reader).
        pthread_join(startJoinableThread(named: "rehearsal") {
            RCUMemb.retire(DeferredRehearsal())
            RCUMemb.barrier()
        }, nil)
        let race = raceFirstUseWithFork(
            firstUse: {
                RCUMemb.deferRetire(DeferredRehearsal())
                return {}
            },
            child: {
                RCUMemb.deferRetire(DeferredInChild())
                // The flusher hands the batch over after about 100 ms, then a grace period.
                let deadline = ContinuousClock.now + .seconds(3)
                while !deferredReleasedInChild.load(ordering: .acquiring) {
                    if ContinuousClock.now >= deadline { return 1 }
                    usleep(10_000)
                }
                return 0
            })
        XCTAssertFalse(race.firstUseBeforeFork, "the first deferRetire finished while a fork was being prepared")
        XCTAssertNil(race.childFailure, "(exit 1: the child's deferred object was never released)")
        XCTAssertTrue(race.firstUseFinished)
    }
}

private final class DeferredRehearsal: Sendable {}

/// Set by a ``RetiredInChild``'s deinit (in a forked child).
private let retiredReleasedInChild = Atomic<Bool>(false)

private final class RetiredInChild: Sendable {
    deinit { retiredReleasedInChild.store(true, ordering: .releasing) }
}

/// The shim installs liburcu's call_rcu fork hooks in the once of a flavor's first call_rcu,
/// which also makes the default call_rcu worker.
final class ForkInitializerCallRCUTests: XCTestCase {
    func testFirstRetireRacingAFork() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        XCTAssertNil(failureOfFreshTestProcess("RCUTests.ForkInitializerCallRCUTests/testFirstRetireInAFreshProcess",
                                               timeout: .seconds(120)))
    }

    /// A first call_rcu that made the worker, then waited to install the hooks (glibc's
    /// pthread_atfork waits for a fork in progress), left the child the parent's worker data
    /// with no worker: the child's callbacks never ran.
    func testFirstRetireInAFreshProcess() throws {
        guard inFreshTestProcess else { throw XCTSkip("runs in the fresh process of testFirstRetireRacingAFork") }
        let race = raceFirstUseWithFork(
            firstUse: {
                RCUMemb.retire(DeferredRehearsal())
                return {}
            },
            child: {
                RCUMemb.retire(RetiredInChild())
                let deadline = ContinuousClock.now + .seconds(3)
                while !retiredReleasedInChild.load(ordering: .acquiring) {
                    if ContinuousClock.now >= deadline { return 1 }
                    usleep(10_000)
                }
                return 0
            })
        XCTAssertNil(race.childFailure, "(exit 1: the child's retired object was never released)")
        XCTAssertTrue(race.firstUseFinished)
    }
}
