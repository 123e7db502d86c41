import Foundation
import XCTest

/// `rcu-stress tasks`: usage errors and a short JSON run of both modes. Timing is only
/// checked to be present: thresholds belong to the benchmark, not the tests.
final class TasksCommandTests: XCTestCase {
    func testZeroTasksIsAUsageError() throws {
        let run = try RCUStressProcess.run(["tasks", "--tasks", "0"])
        XCTAssertEqual(run.status, 64, run.output)
    }

    func testHugeSectionIsAUsageError() throws {
        let run = try RCUStressProcess.run(["tasks", "--section-ms", "5000000"])
        XCTAssertEqual(run.status, 64, run.output)
        XCTAssertTrue(run.output.contains("--section-ms must be within 0...60000"), run.output)
    }

    func testAllFlavorsIsAUsageError() throws {
        let run = try RCUStressProcess.run(["tasks", "--flavor", "all"])
        XCTAssertEqual(run.status, 64, run.output)
        XCTAssertTrue(run.output.contains("--flavor takes one flavor"), run.output)
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
