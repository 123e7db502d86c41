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
