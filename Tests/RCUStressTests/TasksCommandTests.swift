import Foundation
import XCTest

/// `rcu-stress tasks`: usage errors and a short JSON run of both modes. Timing is only
/// checked to be present: thresholds belong to the benchmark, not the tests.
final class TasksCommandTests: XCTestCase {
    func testZeroTasksIsAUsageError() throws {
        StressCLI.assertUsageError(["tasks", "--tasks", "0"])
    }

    func testHugeSectionIsAUsageError() throws {
        StressCLI.assertUsageError(["tasks", "--section-ms", "5000000"], mentions: "--section-ms must be within 0...60000")
    }

    func testAllFlavorsIsAUsageError() throws {
        StressCLI.assertUsageError(["tasks", "--flavor", "all"], mentions: "--flavor all is not one this subcommand runs: memb, qsbr, bp or mb")
    }

    /// Both modes complete every wait; the awaited waits share grace periods, the blocking
    /// ones start one each.
    func testShortJSONRunOfBothModes() throws {
        for flavor in ["memb", "qsbr"] {
            let run = try RCUStressProcess.run(["tasks", "--json", "--flavor", flavor, "--tasks", "300", "--retire"])
            XCTAssertEqual(run.status, 0, run.output)
            let objects = try StressJSON.objects(run)
            XCTAssertEqual(objects.compactMap { $0["mode"] as? String }, ["async", "blocking"], run.output)
            for object in objects {
                XCTAssertEqual(try StressJSON.int(object, "waits"), 300, "\(object)")
                XCTAssertEqual(object["retire"] as? Bool, true, "\(object)")
                XCTAssertNotNil(object["ping_p99_ns"], "\(object)")
            }
            XCTAssertLessThan(try StressJSON.int(objects[0], "grace_periods"), 300, "async waits share grace periods")
            XCTAssertEqual(try StressJSON.int(objects[1], "grace_periods"), 300, "one per blocking wait")
        }
    }
}
