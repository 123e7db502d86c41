import Foundation
import TestSupport
import XCTest
@testable import Lockdep

/// Lockdep's graph registers the validator's fork hooks when it is made
/// (``ForkHooks/makeOnce(_:_:)``): the process's first validator call racing a fork being
/// prepared must not leave the child the graph lock held by a parent thread. A plain
/// XCTestCase (not LockdepTestCase, whose setUp makes the graph): the fresh process must not
/// have made it before the race.
final class ForkInitializerRaceTests: XCTestCase {
    func testGraphFirstUseRacingAFork() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        XCTAssertNil(failureOfFreshTestProcess("LockdepTests.ForkInitializerRaceTests/testGraphInAFreshProcess",
                                               timeout: .seconds(120)))
    }

    func testGraphInAFreshProcess() throws {
        guard inFreshTestProcess else { throw XCTSkip("runs in the fresh process of testGraphFirstUseRacingAFork") }
        let race = raceFirstUseWithFork(
            firstUse: {
                let lock = graph.lock
                lock.lock()
                return { lock.unlock() }
            },
            child: {
                graph.withLock { _ in }
                return 0
            })
        XCTAssertFalse(race.firstUseBeforeFork, "the graph was made while a fork was being prepared")
        XCTAssertNil(race.childFailure)
        XCTAssertTrue(race.firstUseFinished, "the first use did not finish after the fork")
    }
}

/// The statistics' and symbol tables' locks are Lockdep's fork hooks' too: a first use of
/// either, before any class made the graph, registers the hooks, so a fork while a thread holds
/// that lock waits for it instead of leaving the child the lock held.
final class ForkInitializerHookFirstUseTests: XCTestCase {
    func testStatisticsLockHeldAtAForkBeforeTheGraphExisted() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        XCTAssertNil(failureOfFreshTestProcess(
            "LockdepTests.ForkInitializerHookFirstUseTests/testStatisticsLockHeldInAFreshProcess", timeout: .seconds(120)))
    }

    func testStatisticsLockHeldInAFreshProcess() throws {
        guard inFreshTestProcess else { throw XCTSkip("runs in a fresh process") }
        forkWhileHolding({ Engine.statistics.lock }, child: { Engine.statistics.withLock { _ in } })
    }

    func testSymbolTablesLockHeldAtAForkBeforeTheGraphExisted() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        XCTAssertNil(failureOfFreshTestProcess(
            "LockdepTests.ForkInitializerHookFirstUseTests/testSymbolTablesLockHeldInAFreshProcess", timeout: .seconds(120)))
    }

    func testSymbolTablesLockHeldInAFreshProcess() throws {
        guard inFreshTestProcess else { throw XCTSkip("runs in a fresh process") }
        forkWhileHolding({ ElfSymbols.loaded.lock }, child: { ElfSymbols.loaded.withLock { _ in } })
    }

    /// Another thread makes the lock (its first use), holds it 300 ms; this one forks meanwhile.
    private func forkWhileHolding(_ lock: @escaping @Sendable () -> InternalLock, child: () -> Void,
                                  file: StaticString = #filePath, line: UInt = #line) {
        let holding = Locked(false)
        let holder = Thread {
            let held = lock()
            held.lock()
            holding.withLock { $0 = true }
            usleep(300_000)
            held.unlock()
        }
        holder.start()
        while !holding.withLock({ $0 }) { usleep(1_000) }
        let children = forkChildren(1, alarm: 5, timeout: .seconds(15)) { child() }
        XCTAssertEqual(children.exitedZero, 1, "hung: \(children.hung), failed: \(children.failedStatuses)",
                       file: file, line: line)
    }
}
