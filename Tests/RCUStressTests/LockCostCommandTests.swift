import Foundation
import XCTest

/// `rcu-stress lock-cost`: usage errors and a short JSON run. The ratio is
/// only checked to be a positive number: timing thresholds belong to the
/// benchmark, not the tests.
final class LockCostCommandTests: XCTestCase {
    func testZeroIterationsIsAUsageError() throws {
        StressCLI.assertUsageError(["lock-cost", "--iterations", "0"], showsUsage: true)
    }

    func testNegativeRoundsIsAUsageError() throws {
        StressCLI.assertUsageError(["lock-cost", "--rounds=-1"])
    }

    /// Issue 15: an iteration count that passes as a number but would run for centuries is
    /// refused with a reason, and so is one whose product with the rounds overflows.
    func testHugeIterationCountsAreRefused() throws {
        StressCLI.assertUsageError(["lock-cost", "--iterations", "9223372036854775807"], mentions: "too many pairs")
        StressCLI.assertUsageError(["lock-cost", "--iterations", "4611686018427387904", "--rounds", "4"], mentions: "too many pairs")
        StressCLI.assertUsageError(["lock-cost", "--iterations", "100000001", "--rounds", "10"])
    }

    /// A billion one-pair rounds passed the pair limit and ran for about half an hour, and a
    /// one-pair round times the clock: both are refused with the reason.
    func testRoundCountsAndTinyRoundsAreRefused() throws {
        StressCLI.assertUsageError(["lock-cost", "--iterations", "10000", "--rounds", "1000000000"], mentions: "--rounds must be within 1...100")
        StressCLI.assertUsageError(["lock-cost", "--iterations", "1"], mentions: "--iterations must be at least 10000")
    }

    func testShortJSONRun() throws {
        let run = try RCUStressProcess.run(["lock-cost", "--json", "--iterations", "20000", "--rounds", "2"])
        XCTAssertEqual(run.status, 0, run.output)
        let object = try StressJSON.object(run)
        XCTAssertNotNil(object["checks_compiled_in"] as? Bool, "\(object)")
        #if DEBUG
        XCTAssertEqual(object["optimized"] as? Bool, false, "a debug build of rcu-stress: \(object)")
        #else
        XCTAssertEqual(object["optimized"] as? Bool, true, "a release build of rcu-stress: \(object)")
        #endif
        for key in ["plain_ns", "checked_ns", "ratio", "floor_ns", "floor_ratio", "single_threaded_plain_ns",
                    "single_threaded_checked_ns", "single_threaded_ratio", "single_threaded_floor_ns",
                    "single_threaded_floor_ratio", "padded_ns", "padded_ratio", "single_threaded_padded_ns"] {
            let value = try XCTUnwrap((object[key] as? NSNumber)?.doubleValue, "\(key) in \(object)")
            XCTAssertGreaterThan(value, 0, "\(key) in \(object)")
        }
        // The padding's figures follow from the times; the checks' worth in additions is given
        // only with checks compiled in and a padding that cost at least 5% of the plain pair.
        let plain = try XCTUnwrap((object["plain_ns"] as? NSNumber)?.doubleValue)
        let checked = try XCTUnwrap((object["checked_ns"] as? NSNumber)?.doubleValue)
        let padded = try XCTUnwrap((object["padded_ns"] as? NSNumber)?.doubleValue)
        let perAdd = try XCTUnwrap((object["ns_per_padding_add"] as? NSNumber)?.doubleValue, "\(object)")
        XCTAssertEqual(perAdd, (padded - plain) / 64, accuracy: 0.002, "\(object)")
        let worth = (object["checked_extra_in_padding_adds"] as? NSNumber)?.doubleValue
        let checksIn = try XCTUnwrap(object["checks_compiled_in"] as? Bool, "\(object)")
        let measurable = checksIn && padded - plain >= 0.05 * plain
        // At the boundary the rounded times cannot tell: only clear cases are asserted.
        if abs(padded - plain - 0.05 * plain) > 0.01 {
            XCTAssertEqual(worth != nil, measurable, "\(object)")
        }
        if let worth, perAdd > 0.02 {
            XCTAssertEqual(worth, (checked - plain) / perAdd, accuracy: max(1, abs(worth) * 0.05), "\(object)")
        }
        // Nothing in rcu-stress starts a thread before the first run, so glibc counted it
        // single-threaded from start to end: the run the command labels so really was.
        XCTAssertEqual(object["single_threaded_timed"] as? Bool, true, "\(object)")
        let offset = try XCTUnwrap((object["line_offset"] as? NSNumber)?.intValue, "\(object)")
        XCTAssertTrue((0..<64).contains(offset), "line_offset \(offset) in \(object)")
        XCTAssertEqual((object["iterations"] as? NSNumber)?.intValue, 20_000, "\(object)")
        XCTAssertEqual((object["rounds"] as? NSNumber)?.intValue, 2, "\(object)")
    }
}
