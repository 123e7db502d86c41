import Foundation
import XCTest

/// `rcu-stress lock-cost`: usage errors and a short JSON run. The ratio is
/// only checked to be a positive number: timing thresholds belong to the
/// benchmark, not the tests.
final class LockCostCommandTests: XCTestCase {
    func testZeroIterationsIsAUsageError() throws {
        let run = try RCUStressProcess.run(["lock-cost", "--iterations", "0"])
        XCTAssertEqual(run.status, 64, run.output)
        XCTAssertTrue(run.output.contains("Usage:"), run.output)
    }

    func testNegativeRoundsIsAUsageError() throws {
        let run = try RCUStressProcess.run(["lock-cost", "--rounds=-1"])
        XCTAssertEqual(run.status, 64, run.output)
    }

    /// Issue 15: an iteration count that passes as a number but would run for centuries is
    /// refused with a reason, and so is one whose product with the rounds overflows.
    func testHugeIterationCountsAreRefused() throws {
        let huge = try RCUStressProcess.run(["lock-cost", "--iterations", "9223372036854775807"])
        XCTAssertEqual(huge.status, 64, huge.output)
        XCTAssertTrue(huge.output.contains("too many pairs"), huge.output)
        let overflow = try RCUStressProcess.run(["lock-cost", "--iterations", "4611686018427387904", "--rounds", "4"])
        XCTAssertEqual(overflow.status, 64, overflow.output)
        XCTAssertTrue(overflow.output.contains("too many pairs"), overflow.output)
        let justOver = try RCUStressProcess.run(["lock-cost", "--iterations", "100000001", "--rounds", "10"])
        XCTAssertEqual(justOver.status, 64, justOver.output)
    }

    /// A billion one-pair rounds passed the pair limit and ran for about half an hour, and a
    /// one-pair round times the clock: both are refused with the reason.
    func testRoundCountsAndTinyRoundsAreRefused() throws {
        let manyRounds = try RCUStressProcess.run(["lock-cost", "--iterations", "10000", "--rounds", "1000000000"])
        XCTAssertEqual(manyRounds.status, 64, manyRounds.output)
        XCTAssertTrue(manyRounds.output.contains("--rounds must be within 1...100"), manyRounds.output)
        let tiny = try RCUStressProcess.run(["lock-cost", "--iterations", "1"])
        XCTAssertEqual(tiny.status, 64, tiny.output)
        XCTAssertTrue(tiny.output.contains("--iterations must be at least 10000"), tiny.output)
    }

    func testShortJSONRun() throws {
        let run = try RCUStressProcess.run(["lock-cost", "--json", "--iterations", "20000", "--rounds", "2"])
        XCTAssertEqual(run.status, 0, run.output)
        let object = try StressJSON.object(run)
        XCTAssertNotNil(object["checks_compiled_in"] as? Bool, "\(object)")
        for key in ["plain_ns", "checked_ns", "ratio"] {
            let value = try XCTUnwrap((object[key] as? NSNumber)?.doubleValue, "\(key) in \(object)")
            XCTAssertGreaterThan(value, 0, "\(key) in \(object)")
        }
    }
}
