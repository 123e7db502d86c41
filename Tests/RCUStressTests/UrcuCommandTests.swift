import Foundation
import XCTest

/// `rcu-stress urcu`: argument errors are usage errors (exit status 64) and a
/// short run of every flavor reports zero poisoned reads. No timing assertions.
final class UrcuCommandTests: XCTestCase {
    private func assertUsageError(_ arguments: [String], mentions text: String? = nil,
                                  file: StaticString = #filePath, line: UInt = #line) {
        StressCLI.assertUsageError(["urcu"] + arguments, mentions: text, showsUsage: true,
                                              file: file, line: line)
    }

    func testUnknownFlavorIsAUsageError() throws {
        assertUsageError(["2", "1", "1", "--flavor", "signal"], mentions: "--flavor")
    }

    func testMissingFlavorIsAUsageError() throws {
        assertUsageError(["2", "1", "1"], mentions: "--flavor")
    }

    func testZeroDurationIsAUsageError() throws {
        assertUsageError(["2", "1", "0", "--flavor", "memb"], mentions: "DURATION")
    }

    func testNegativeReadersIsAUsageError() throws {
        assertUsageError(["--flavor", "memb", "--", "-2", "1", "1"], mentions: "NR_READERS")
    }

    func testNonNumericCountIsAUsageError() throws {
        assertUsageError(["two", "1", "1", "--flavor", "memb"])
    }

    func testNoThreadsIsAUsageError() throws {
        assertUsageError(["0", "0", "1", "--flavor", "memb"])
    }

    func testTooManyThreadsIsAUsageError() throws {
        assertUsageError(["5000", "0", "1", "--flavor", "memb"])
    }

    func testNegativeDelaysAreUsageErrors() throws {
        assertUsageError(["1", "1", "1", "--flavor", "memb", "-d", "-1"])
        assertUsageError(["1", "1", "1", "--flavor", "memb", "-c=-1"])
        assertUsageError(["1", "1", "1", "--flavor", "memb", "-e=-1"])
    }

    func testBadBatchIsAUsageError() throws {
        assertUsageError(["1", "1", "1", "--flavor", "memb", "-b", "0"], mentions: "BATCH")
        assertUsageError(["1", "1", "1", "--flavor", "rwlock", "-b", "8"], mentions: "BATCH")
    }

    func testUnknownCPUIsAUsageError() throws {
        assertUsageError(["1", "1", "1", "--flavor", "memb", "-a", "100000"], mentions: "-a")
    }

    func testSummaryLineHasLiburcuFields() throws {
        let run = try RCUStressProcess.run(["urcu", "1", "1", "0.3", "--flavor", "memb"])
        XCTAssertEqual(run.status, 0, run.output)
        let summary = try XCTUnwrap(run.stdout.split(separator: "\n").first { $0.hasPrefix("SUMMARY ") }, run.stdout)
        let words = summary.split(separator: " ").map(String.init)
        let keys = stride(from: 2, to: words.count, by: 2).map { words[$0] }
        XCTAssertEqual(
            keys, ["testdur", "nr_readers", "rdur", "wdur", "nr_writers", "wdelay", "nr_reads", "nr_writes", "nr_ops"],
            String(summary))
        XCTAssertTrue(run.stdout.contains("PASS"), run.stdout)
    }

    func testShortJSONRunOfEveryFlavorIsClean() throws {
        for flavor in ["memb", "qsbr", "bp", "mb", "rwlock", "mutex"] {
            let run = try RCUStressProcess.run(["urcu", "2", "1", "0.3", "--flavor", flavor, "--json", "--sample-every", "64"])
            XCTAssertEqual(run.status, 0, run.output)
            let object = try StressJSON.object(run)
            XCTAssertEqual(object["flavor"] as? String, flavor)
            XCTAssertEqual(try StressJSON.int(object, "poisoned_reads"), 0, "\(object)")
            XCTAssertEqual(object["passed"] as? Bool, true, "\(object)")
            let reads = try StressJSON.int(object, "nr_reads")
            let writes = try StressJSON.int(object, "nr_writes")
            XCTAssertGreaterThan(reads, 0, "\(object)")
            XCTAssertGreaterThan(writes, 0, "\(object)")
            XCTAssertEqual(try StressJSON.int(object, "nr_ops"), reads + writes)
            XCTAssertGreaterThan(try StressJSON.int(object, "rss_peak_bytes"), 0)
            XCTAssertNotNil(object["read_p99_ns"] as? NSNumber, "\(object)")
        }
    }

    /// The default run is test_urcu's loop: no read timed. With no writer the pointer stays
    /// empty, as test_urcu's does, and the readers still count every read.
    func testDefaultReadersOnlyRunTimesNoReadAndCountsReads() throws {
        for flavor in ["memb", "qsbr", "rwlock"] {
            let run = try RCUStressProcess.run(["urcu", "2", "0", "0.3", "--flavor", flavor, "--json"])
            XCTAssertEqual(run.status, 0, run.output)
            let object = try StressJSON.object(run)
            XCTAssertEqual(try StressJSON.int(object, "latency_sample_every"), 0, "\(object)")
            XCTAssertEqual(try StressJSON.int(object, "latency_samples"), 0, "\(object)")
            XCTAssertGreaterThan(try StressJSON.int(object, "nr_reads"), 0, "\(object)")
            XCTAssertEqual(try StressJSON.int(object, "nr_writes"), 0, "\(object)")
            XCTAssertEqual(object["passed"] as? Bool, true, "\(object)")
        }
        let text = try RCUStressProcess.run(["urcu", "1", "1", "0.2", "--flavor", "bp"])
        XCTAssertEqual(text.status, 0, text.output)
        XCTAssertTrue(text.stdout.contains("read latency not sampled"), text.stdout)
    }

    /// Without `-b` and off a terminal the main thread sleeps through the run, as test_urcu's
    /// `main` does, instead of sampling every 10 ms: the run still lasts its whole duration
    /// (a sleep cut short by a signal sleeps the rest) and still reports its peak RSS.
    func testUnsampledRunLastsItsDurationAndReportsPeakRSS() throws {
        for flavor in ["qsbr", "mutex"] {
            let run = try RCUStressProcess.run(["urcu", "1", "1", "0.3", "--flavor", flavor, "--json"])
            XCTAssertEqual(run.status, 0, run.output)
            let object = try StressJSON.object(run)
            let elapsed = try XCTUnwrap(object["elapsed_s"] as? NSNumber, "\(object)").doubleValue
            XCTAssertGreaterThanOrEqual(elapsed, 0.3, "\(object)")
            XCTAssertGreaterThan(try StressJSON.int(object, "rss_peak_bytes"), 0, "\(object)")
            XCTAssertGreaterThan(try StressJSON.int(object, "nr_writes"), 0, "\(object)")
        }
    }

    func testSampledRunTimesReads() throws {
        let run = try RCUStressProcess.run(["urcu", "1", "1", "0.3", "--flavor", "mb", "--json", "--sample-every", "16"])
        XCTAssertEqual(run.status, 0, run.output)
        let object = try StressJSON.object(run)
        XCTAssertEqual(try StressJSON.int(object, "latency_sample_every"), 16, "\(object)")
        XCTAssertGreaterThan(try StressJSON.int(object, "latency_samples"), 0, "\(object)")
    }

    func testZeroSampleEveryIsAUsageError() throws {
        assertUsageError(["1", "1", "1", "--flavor", "memb", "--sample-every", "0"], mentions: "--sample-every")
    }

    func testBatchedCallRCURunIsClean() throws {
        let run = try RCUStressProcess.run(["urcu", "1", "1", "0.3", "--flavor", "qsbr", "-b", "32", "--json", "-a", "0"])
        XCTAssertEqual(run.status, 0, run.output)
        let object = try StressJSON.object(run)
        XCTAssertEqual(try StressJSON.int(object, "batch"), 32)
        XCTAssertEqual(try StressJSON.int(object, "poisoned_reads"), 0, "\(object)")
        XCTAssertGreaterThan(try StressJSON.int(object, "nr_writes"), 0, "\(object)")
    }

    /// On a terminal the progress line counts the readers' reads while they run, though
    /// each reader keeps its count in its own thread-local (as test_urcu does) and
    /// publishes it only at the end: the monitor reads the thread-locals. Run under
    /// `script`, which gives the run a terminal.
    func testProgressLineCountsReadsKeptInThreadLocals() throws {
        for flavor in ["memb", "qsbr", "mutex"] {
            let run = try RCUStressProcess.runOnTerminal(["urcu", "2", "0", "2.5", "--flavor", flavor])
            XCTAssertEqual(run.status, 0, run.output)
            let rates = RCUStressProcess.progressRates(run.output)
            XCTAssertFalse(rates.isEmpty, "\(flavor): no progress line in \(run.output.debugDescription)")
            for rate in rates { XCTAssertGreaterThan(rate, 0, "\(flavor): \(run.output.debugDescription)") }
        }
    }
}
