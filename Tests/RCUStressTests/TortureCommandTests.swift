import Foundation
#if canImport(Glibc)
import Glibc
#endif
import XCTest

/// `rcu-stress torture`: usage errors, a clean short run per flavor, and the
/// hidden broken writer, which must be caught (exit status 1, FAILURE).
final class TortureCommandTests: XCTestCase {
    func testUnknownFlavorIsAUsageError() throws {
        StressCLI.assertUsageError(["torture", "--flavor", "rwlock", "--duration", "1"], mentions: "--flavor")
    }

    func testZeroDurationIsAUsageError() throws {
        StressCLI.assertUsageError(["torture", "--flavor", "memb", "--duration", "0"], mentions: "--duration")
    }

    func testMissingDurationIsAUsageError() throws {
        StressCLI.assertUsageError(["torture", "--flavor", "memb"])
    }

    func testBadReaderCountIsAUsageError() throws {
        for readers in ["0", "-3", "many"] {
            StressCLI.assertUsageError(["torture", "--flavor", "memb", "--duration", "1", "--readers=\(readers)"])
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

    // MARK: liburcu's rcutorture matrix (tests/regression: rcutorture_urcu_<flavor>_<mode>_<workers>)

    func testUnknownModeOrWorkersIsAUsageError() throws {
        StressCLI.assertUsageError(
            ["torture", "--flavor", "memb", "--duration", "1", "--mode", "fast"], mentions: "--mode",
            file: #filePath, line: #line)
        StressCLI.assertUsageError(
            ["torture", "--flavor", "memb", "--duration", "1", "--callback-workers", "per-core"],
            mentions: "--callback-workers", file: #filePath, line: #line)
    }

    /// Without a writer of elements there is nothing to break: refused, not ignored.
    func testBrokenWriterIsRefusedInPerfModes() throws {
        StressCLI.assertUsageError(
            ["torture", "--flavor", "memb", "--duration", "1", "--mode", "perf", "--broken-writer"],
            mentions: "--broken-writer", file: #filePath, line: #line)
    }

    /// `torture --readers 4096 --duration 0.01` ran for minutes (4096 spinning threads on
    /// 2 CPUs); past 64 threads per online CPU it is refused with the reason.
    func testReadersPastThePerCPUCapAreRefused() throws {
        let cpus = onlineCPUs
        try XCTSkipIf(cpus * 64 > 4096, "\(cpus) CPUs: 4096 readers are within the cap here")
        StressCLI.assertUsageError(["torture", "--flavor", "memb", "--readers", "4096", "--duration", "0.01"], mentions: "at most 64 per online CPU", "would start 4097 threads")
        // The cap counts every thread of the mode: stress adds six updaters.
        StressCLI.assertUsageError(
            ["torture", "--flavor", "memb", "--mode", "stress", "--readers", "\(cpus * 64 - 5)", "--duration", "0.01"],
            mentions: "at most 64 per online CPU")
    }

    /// A run at the cap ends and reports its start and stop times.
    func testRunAtTheThreadCapEndsAndReportsStartAndStop() throws {
        let readers = onlineCPUs * 64 - 1
        try XCTSkipIf(readers + 1 > 4096, "cap above liburcu's thread limit")
        let run = try RCUStressProcess.run(
            ["torture", "--flavor", "memb", "--readers", "\(readers)", "--duration", "0.01", "--json"])
        XCTAssertEqual(run.status, 0, run.output)
        let object = try StressJSON.object(run)
        XCTAssertEqual(try StressJSON.int(object, "readers"), readers)
        XCTAssertNotNil(object["start_s"] as? NSNumber, "\(object)")
        XCTAssertNotNil(object["stop_s"] as? NSNumber, "\(object)")
    }

    /// The stress mode's checks can fail: an updater that skips its grace periods is caught.
    func testBrokenStressUpdaterFails() throws {
        let run = try RCUStressProcess.run(
            ["torture", "--flavor", "memb", "--mode", "stress", "--duration", "2", "--broken-writer", "--json"])
        XCTAssertEqual(run.status, 1, run.output)
        let object = try StressJSON.object(run)
        XCTAssertEqual(object["verdict"] as? String, "FAILURE", "\(object)")
        XCTAssertGreaterThan(
            try StressJSON.int(object, "ages_past_one") + StressJSON.int(object, "mberror"), 0, "\(object)")
    }

    /// liburcu's `make regtest` rcutorture runs: each flavor x {perf, rperf, uperf, stress} x
    /// {global, per-CPU, per-thread} call_rcu workers. Short by default; with
    /// `SWIFT_RCU_REGTEST=full`, liburcu's own durations (1 s perf modes, 10 s stress) and
    /// thread count (nproc).
    func testLiburcuRegressionMatrix() throws {
        let full = regressionForm == "full"
        let threads = full ? max(2, ProcessInfo.processInfo.activeProcessorCount) : 2
        for mode in ["perf", "rperf", "uperf", "stress"] {
            let seconds = full ? (mode == "stress" ? "10" : "1") : (mode == "stress" ? "0.3" : "0.1")
            let run = try RCUStressProcess.run(
                ["torture", "--flavor", "all", "--mode", mode, "--callback-workers", "all",
                 "--readers", "\(threads)", "--duration", seconds, "--json"])
            XCTAssertEqual(run.status, 0, run.output)
            let objects = try StressJSON.objects(run)
            let expected = ["memb", "qsbr", "bp", "mb"].flatMap { flavor in
                ["global", "per-cpu", "per-thread"].map { "\(flavor) \(mode) \($0)" }
            }
            XCTAssertEqual(
                objects.map { "\($0["flavor"] ?? "") \($0["mode"] ?? "") \($0["callback_workers"] ?? "")" }, expected)
            for object in objects {
                // One line per liburcu run, for the log: rcutorture_urcu_<flavor>_<mode>_<workers>.
                print("rcutorture \(object["flavor"] ?? "") \(mode) \(object["callback_workers"] ?? ""): "
                      + "reads \(object["reads"] ?? "") updates \(object["grace_periods"] ?? "") "
                      + "mberror \(object["mberror"] ?? "") pipe \((object["reader_pipe"] as? [NSNumber])?.map(\.intValue) ?? []) \(object["verdict"] ?? "")")
                try checkRegressionRun(object, mode: mode, threads: threads)
                // A short run on a loaded machine may end before its first update completes (a
                // stress update waits for a call_rcu batch): that configuration runs again for
                // longer, and then it must update.
                if mode != "rperf", try StressJSON.int(object, "grace_periods") == 0 {
                    let flavor = try XCTUnwrap(object["flavor"] as? String)
                    let workers = try XCTUnwrap(object["callback_workers"] as? String)
                    let again = try RCUStressProcess.run(
                        ["torture", "--flavor", flavor, "--mode", mode, "--callback-workers", workers,
                         "--readers", "\(threads)", "--duration", "3", "--json"])
                    XCTAssertEqual(again.status, 0, again.output)
                    let longer = try StressJSON.object(again)
                    try checkRegressionRun(longer, mode: mode, threads: threads)
                    XCTAssertGreaterThan(try StressJSON.int(longer, "grace_periods"), 0, "\(longer)")
                }
            }
        }
    }

    private func checkRegressionRun(_ object: [String: Any], mode: String, threads: Int) throws {
        XCTAssertEqual(object["verdict"] as? String, "SUCCESS", "\(object)")
        XCTAssertEqual(try StressJSON.int(object, "callbacks_lost"), 0, "\(object)")
        XCTAssertEqual(try StressJSON.int(object, "worker_errors"), 0, "\(object)")
        let updaters = try StressJSON.int(object, "updaters")
        XCTAssertEqual(updaters, ["perf": 1, "rperf": 0, "uperf": threads, "stress": 6][mode], "\(object)")
        if object["callback_workers"] as? String == "per-thread" {
            XCTAssertEqual(try StressJSON.int(object, "dedicated_workers"), updaters, "\(object)")
        }
        if mode != "uperf" { XCTAssertGreaterThan(try StressJSON.int(object, "reads"), 0, "\(object)") }
        if mode == "stress" {
            // liburcu's check (n_mberror) and the histogram's: no read older than one grace period.
            XCTAssertEqual(try StressJSON.int(object, "mberror"), 0, "\(object)")
            XCTAssertEqual(try StressJSON.int(object, "ages_past_one"), 0, "\(object)")
            let pipe = try XCTUnwrap(object["reader_pipe"] as? [NSNumber], "\(object)").map(\.intValue)
            XCTAssertEqual(pipe.count, 11)
            XCTAssertEqual(pipe.reduce(0, +), try StressJSON.int(object, "reads"), "\(object)")
        }
    }
}

/// Online CPUs, as `rcu-stress torture` counts them for its thread limit.
private var onlineCPUs: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

/// `SWIFT_RCU_REGTEST`: `full` runs liburcu's regression suite at its own sizes and durations.
var regressionForm: String { ProcessInfo.processInfo.environment["SWIFT_RCU_REGTEST"] ?? "short" }
