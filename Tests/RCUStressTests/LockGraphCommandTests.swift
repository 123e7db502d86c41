import Foundation
import XCTest

/// `rcu-stress lock-graph`: usage errors and a small JSON run. Only the output's shape and
/// counts are checked: timing thresholds belong to the benchmark, not the tests.
final class LockGraphCommandTests: XCTestCase {
    func testTooFewClassesIsAUsageError() throws {
        StressCLI.assertUsageError(["lock-graph", "--classes", "2"], mentions: "--classes",
                                              file: #filePath, line: #line)
    }

    func testMoreDependenciesThanPairsIsAUsageError() throws {
        StressCLI.assertUsageError(["lock-graph", "--classes", "10", "--dependencies", "46"],
                                              mentions: "--dependencies", file: #filePath, line: #line)
    }

    func testSmallJSONRun() throws {
        let run = try RCUStressProcess.run(["lock-graph", "--json", "--classes", "200", "--dependencies", "600", "--seed", "7"])
        XCTAssertEqual(run.status, 0, run.output)
        let objects = try StressJSON.objects(run)
        XCTAssertEqual(objects.map { $0["graph"] as? String }, ["chain", "random"], run.stdout)
        for object in objects {
            XCTAssertEqual(try StressJSON.int(object, "classes"), 200, "\(object)")
            XCTAssertEqual(try StressJSON.int(object, "reports"), 0, "\(object)")
            XCTAssertEqual(try StressJSON.int(object, "classes_after_free"), 0, "\(object)")
            XCTAssertEqual(try StressJSON.int(object, "dependencies_after_free"), 0, "\(object)")
            let checksCompiledIn = try XCTUnwrap(object["checks_compiled_in"] as? Bool, "\(object)")
            // With the executable's checks compiled out (a release build) the graph costs nothing
            // to build: under the millisecond the JSON rounds to.
            let buildSeconds = try XCTUnwrap((object["build_seconds"] as? NSNumber)?.doubleValue)
            if checksCompiledIn { XCTAssertGreaterThan(buildSeconds, 0) } else { XCTAssertGreaterThanOrEqual(buildSeconds, 0) }
            let sizes = try XCTUnwrap(object["sizes"] as? [Int], "\(object)")
            XCTAssertEqual(sizes, [25, 50, 100, 200])
            let counts = try XCTUnwrap(object["bucket_dependencies"] as? [Int], "\(object)")
            XCTAssertEqual(counts.reduce(0, +), try StressJSON.int(object, "dependencies"), "\(object)")
            for key in ["p50_ns", "p99_ns", "max_ns"] {
                let values = try XCTUnwrap(object[key] as? [Int], "\(key) in \(object)")
                XCTAssertEqual(values.count, sizes.count, "\(key) in \(object)")
                for (p, count) in zip(values, counts) where count > 0 { XCTAssertGreaterThan(p, 0, "\(key) in \(object)") }
            }
        }
        XCTAssertEqual(try StressJSON.int(objects[0], "dependencies"), 199, "a chain of 200 classes")
        XCTAssertEqual(try StressJSON.int(objects[1], "dependencies"), 600)
    }

    func testTable() throws {
        let run = try RCUStressProcess.run(["lock-graph", "--classes", "64", "--dependencies", "128"])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.stdout.contains("reports: 0"), run.stdout)
        XCTAssertTrue(run.stdout.contains("chain: 64 classes, 63 dependencies built in"), run.stdout)
        XCTAssertTrue(run.stdout.contains("random: 64 classes, 128 dependencies built in"), run.stdout)
    }
}
