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
