import Foundation
import XCTest

/// `rcu-stress retire-storm`: usage errors and a short JSON run of two policies.
final class RetireStormCommandTests: XCTestCase {
    func testZeroObjectsIsAUsageError() throws {
        StressCLI.assertUsageError(["retire-storm", "--objects", "0"], mentions: "--objects must be within")
    }

    func testAllFlavorsIsAUsageError() throws {
        StressCLI.assertUsageError(["retire-storm", "--flavor", "all"])
    }

    /// Every object reclaimed exactly once under each policy; throughput is reported against
    /// the unbounded run.
    func testShortJSONRun() throws {
        let run = try RCUStressProcess.run(
            ["retire-storm", "--json", "--objects", "30000", "--policies", "standard", "expedited", "unbounded"])
        XCTAssertEqual(run.status, 0, run.output)
        let objects = try StressJSON.objects(run)
        XCTAssertEqual(objects.compactMap { $0["policy"] as? String }, ["standard", "expedited", "unbounded"], run.output)
        for object in objects {
            XCTAssertEqual(try StressJSON.int(object, "objects"), 30_000, "\(object)")
            XCTAssertEqual(try StressJSON.int(object, "reclaimed"), 30_000, "\(object)")
            XCTAssertEqual(try StressJSON.int(object, "duplicates"), 0, "\(object)")
            XCTAssertNotNil(object["throughput_vs_unbounded"] as? Double, "\(object)")
            XCTAssertNotNil(object["peak_rss_above_baseline_bytes"], "\(object)")
            XCTAssertNotNil(object["backlog_peak"], "\(object)")
        }
        XCTAssertEqual(objects[2]["throughput_vs_unbounded"] as? Double, 1.0)
    }

    func testFastPathJSON() throws {
        let run = try RCUStressProcess.run(["retire-storm", "--json", "--fast-path", "--rounds", "2"])
        XCTAssertEqual(run.status, 0, run.output)
        let object = try XCTUnwrap(try StressJSON.objects(run).first)
        XCTAssertEqual(try StressJSON.int(object, "throttled_retires"), 0, "under the mark: never throttled")
        XCTAssertNotNil(object["fast_path_best_ns"] as? Double)
    }
}
