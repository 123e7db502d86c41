import Foundation
import XCTest

/// `rcu-stress torture`: usage errors, a clean short run per flavor, and the
/// hidden broken writer, which must be caught (exit status 1, FAILURE).
final class TortureCommandTests: XCTestCase {
    func testUnknownFlavorIsAUsageError() throws {
        let run = try RCUStressProcess.run(["torture", "--flavor", "rwlock", "--duration", "1"])
        XCTAssertEqual(run.status, 64, run.output)
        XCTAssertTrue(run.output.contains("--flavor"), run.output)
    }

    func testZeroDurationIsAUsageError() throws {
        let run = try RCUStressProcess.run(["torture", "--flavor", "memb", "--duration", "0"])
        XCTAssertEqual(run.status, 64, run.output)
        XCTAssertTrue(run.output.contains("--duration"), run.output)
    }

    func testMissingDurationIsAUsageError() throws {
        let run = try RCUStressProcess.run(["torture", "--flavor", "memb"])
        XCTAssertEqual(run.status, 64, run.output)
    }

    func testBadReaderCountIsAUsageError() throws {
        for readers in ["0", "-3", "many"] {
            let run = try RCUStressProcess.run(["torture", "--flavor", "memb", "--duration", "1", "--readers=\(readers)"])
            XCTAssertEqual(run.status, 64, run.output)
        }
    }

    func testBrokenWriterIsHiddenFromHelp() throws {
        let run = try RCUStressProcess.run(["torture", "--help"])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertFalse(run.output.contains("--broken-writer"), run.output)
    }

    /// The rcutorture regression of every flavor: short in CI, longer with
    /// `RCU_TORTURE_SECONDS=N` or `RCU_LONG_TESTS=1` (60 s per flavor).
    func testShortRunOfEveryFlavorIsClean() throws {
        let environment = ProcessInfo.processInfo.environment
        let seconds = environment["RCU_TORTURE_SECONDS"] ?? (environment["RCU_LONG_TESTS"] != nil ? "60" : "0.75")
        let run = try RCUStressProcess.run(["torture", "--flavor", "all", "--duration", seconds, "--json"])
        XCTAssertEqual(run.status, 0, run.output)
        let objects = try StressJSON.objects(run)
        XCTAssertEqual(objects.compactMap { $0["flavor"] as? String }, ["memb", "qsbr", "bp", "mb"])
        for object in objects {
            XCTAssertEqual(try StressJSON.int(object, "ages_past_one"), 0, "\(object)")
            XCTAssertEqual(try StressJSON.int(object, "mberror"), 0, "\(object)")
            XCTAssertEqual(object["verdict"] as? String, "SUCCESS", "\(object)")
            XCTAssertGreaterThan(try StressJSON.int(object, "reads"), 0, "\(object)")
            XCTAssertGreaterThan(try StressJSON.int(object, "grace_periods"), 0, "\(object)")
            let pipe = try XCTUnwrap(object["reader_pipe"] as? [NSNumber], "\(object)")
            XCTAssertEqual(pipe.count, 11)
        }
    }

    func testHumanReportShowsReaderPipeAndVerdict() throws {
        let run = try RCUStressProcess.run(["torture", "--flavor", "qsbr", "--duration", "0.2", "--readers", "1"])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.stdout.contains("Reader Pipe:"), run.stdout)
        XCTAssertTrue(run.stdout.contains("Free-Block Circulation:"), run.stdout)
        XCTAssertTrue(run.stdout.contains("--- End of test: SUCCESS"), run.stdout)
    }

    /// A writer that frees without waiting for grace periods: the readers must catch it.
    func testBrokenWriterFails() throws {
        let run = try RCUStressProcess.run(["torture", "--flavor", "memb", "--duration", "2", "--broken-writer", "--json"])
        XCTAssertEqual(run.status, 1, run.output)
        let object = try StressJSON.object(run)
        XCTAssertEqual(object["verdict"] as? String, "FAILURE", "\(object)")
        XCTAssertGreaterThan(
            try StressJSON.int(object, "ages_past_one") + StressJSON.int(object, "mberror"), 0, "\(object)")
    }
}
