import Foundation
import XCTest

/// Adversarial checks of `rcu-stress urcu` after its readers moved their read count into a
/// local-exec C thread-local (CReferenceReadCount.h), which the progress line reads from the
/// monitor thread while the readers run. Black-box: every run is the built executable.
///
/// Invariants only, no timing: each reader does at least one read (its loop is a repeat-while),
/// nr_ops is nr_reads + nr_writes, `-v`'s totals line agrees with SUMMARY, `--sample-every 1`
/// times every counted read, and the progress line never saw more operations than the run
/// counted in the end (its first rate is a count over at least one second).
final class AdversarialSession14UrcuTests: XCTestCase {
    private static let flavors = ["memb", "qsbr", "bp", "mb", "rwlock", "mutex"]
    private static let rcuFlavors = ["memb", "qsbr", "bp", "mb"]

    /// Checks one `--json` run's counts and returns its object.
    @discardableResult
    private func assertCleanJSONRun(_ arguments: [String], readers: Int, writers: Int,
                                    file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let run = try RCUStressProcess.run(["urcu"] + arguments + ["--json"])
        XCTAssertEqual(run.status, 0, "\(arguments): \(run.output)", file: file, line: line)
        let object = try StressJSON.object(run)
        let reads = try StressJSON.int(object, "nr_reads")
        let writes = try StressJSON.int(object, "nr_writes")
        XCTAssertGreaterThanOrEqual(reads, readers, "\(arguments): \(object)", file: file, line: line)
        XCTAssertGreaterThanOrEqual(writes, writers, "\(arguments): \(object)", file: file, line: line)
        XCTAssertEqual(try StressJSON.int(object, "nr_ops"), reads + writes, "\(arguments): \(object)",
                       file: file, line: line)
        XCTAssertEqual(try StressJSON.int(object, "poisoned_reads"), 0, "\(arguments): \(object)", file: file, line: line)
        XCTAssertEqual(object["passed"] as? Bool, true, "\(arguments): \(object)", file: file, line: line)
        return object
    }

    /// The SUMMARY line's counts (text output).
    private func summaryCounts(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws
        -> (reads: Int, writes: Int, ops: Int)
    {
        let summary = try XCTUnwrap(
            text.split(whereSeparator: { $0.isNewline }).first { $0.contains("SUMMARY ") },
            text.debugDescription, file: file, line: line)
        let words = summary[summary.range(of: "SUMMARY ")!.lowerBound...].split(separator: " ").map(String.init)
        func value(_ key: String) throws -> Int {
            let index = try XCTUnwrap(words.firstIndex(of: key), "\(key) in \(summary)", file: file, line: line)
            return try XCTUnwrap(Int(words[index + 1]), "\(key) in \(summary)", file: file, line: line)
        }
        return (try value("nr_reads"), try value("nr_writes"), try value("nr_ops"))
    }

    /// Runs far shorter than thread start-up, with as many readers as 2 CPUs allow: most
    /// readers see the stop before their first read, and each must still count the one read
    /// its loop does, in both the plain loop (the thread-local) and the sampled loop.
    func testTinyRunsWithManyReadersCountAtLeastOneReadPerReader() throws {
        let readers = min(63, 32 * max(ProcessInfo.processInfo.activeProcessorCount, 2) - 1)
        for flavor in Self.flavors {
            for extra in [[], ["--sample-every", "1000000"]] {
                try assertCleanJSONRun(["\(readers)", "1", "1e-6", "--flavor", flavor] + extra,
                                       readers: readers, writers: 1)
            }
            try assertCleanJSONRun(["16", "0", "0.01", "--flavor", flavor], readers: 16, writers: 0)
        }
    }

    /// `-b` makes the main thread sample while it waits (off a terminal, no progress line);
    /// many readers and two writers, every RCU flavor, pinned and unpinned.
    func testBatchedRunsWithManyReadersCountEveryRead() throws {
        for flavor in Self.rcuFlavors {
            try assertCleanJSONRun(["30", "2", "0.05", "--flavor", flavor, "-b", "4"], readers: 30, writers: 2)
            try assertCleanJSONRun(["6", "2", "0.05", "--flavor", flavor, "-b", "1", "-a", "0", "-a", "0", "-a", "0"],
                                   readers: 6, writers: 2)
        }
    }

    /// Text output: SUMMARY's nr_ops is nr_reads + nr_writes for every flavor, and with `-v`
    /// the totals line (`total number of reads : R, writes W`) agrees with SUMMARY and every
    /// thread logs its begin and end.
    func testVerboseTotalsAgreeWithSummary() throws {
        for flavor in Self.flavors {
            let run = try RCUStressProcess.run(["urcu", "8", "2", "0.05", "--flavor", flavor, "-v"])
            XCTAssertEqual(run.status, 0, run.output)
            let counts = try summaryCounts(run.stdout)
            XCTAssertEqual(counts.ops, counts.reads + counts.writes, run.stdout)
            XCTAssertGreaterThanOrEqual(counts.reads, 8, run.stdout)
            let totals = try XCTUnwrap(
                run.stdout.split(separator: "\n").first { $0.hasPrefix("total number of reads : ") }, run.stdout)
            XCTAssertEqual(String(totals), "total number of reads : \(counts.reads), writes \(counts.writes)", run.stdout)
            let lines = run.stdout.split(separator: "\n")
            for kind in ["reader", "writer"] {
                let count = kind == "reader" ? 8 : 2
                XCTAssertEqual(Set(lines.filter { $0.hasPrefix("thread_begin \(kind) ") }.map {
                    $0.split(separator: " ")[2].trimmingCharacters(in: .punctuationCharacters) }),
                    Set((0..<count).map(String.init)), run.stdout)
                XCTAssertEqual(lines.filter { $0.hasPrefix("thread_end \(kind) ") }.count, count, run.stdout)
            }
        }
    }

    /// `--sample-every 1` times every read, so the latency sample count is the read count:
    /// the sampled loop's count (published, not thread-local) and its samples agree.
    func testSampleEveryOneTimesEveryCountedRead() throws {
        for flavor in ["memb", "qsbr", "mutex"] {
            let object = try assertCleanJSONRun(["4", "1", "0.05", "--flavor", flavor, "--sample-every", "1"],
                                                readers: 4, writers: 1)
            XCTAssertEqual(try StressJSON.int(object, "latency_samples"), try StressJSON.int(object, "nr_reads"),
                           "\(object)")
        }
    }

    /// On a terminal, with many readers, writers, batches, pinning and the sampled loop: the
    /// run passes, and its first progress rate, a count read (partly from the readers'
    /// thread-locals) over at least one second, is above 0 and not above the operations the
    /// run counted in the end (1% for the rate's three digits). A read of the wrong thread's
    /// thread-local, a stale address or a double count would break one of these.
    func testProgressLineOnATerminalNeverExceedsTheFinalCount() throws {
        let runs: [[String]] = [
            ["48", "0", "1.5", "--flavor", "memb"],
            ["30", "2", "1.5", "--flavor", "qsbr", "-b", "8"],
            ["16", "1", "1.5", "--flavor", "bp", "-a", "0", "-a", "1"],
            ["16", "1", "1.5", "--flavor", "mb", "--sample-every", "3"],
            ["30", "0", "1.5", "--flavor", "rwlock"],
            ["8", "1", "1.5", "--flavor", "mutex", "-v"],
        ]
        for arguments in runs {
            let run = try RCUStressProcess.runOnTerminal(["urcu"] + arguments)
            XCTAssertEqual(run.status, 0, "\(arguments): \(run.output.debugDescription)")
            XCTAssertTrue(run.output.contains("PASS"), "\(arguments): \(run.output.debugDescription)")
            let counts = try summaryCounts(run.output)
            XCTAssertEqual(counts.ops, counts.reads + counts.writes, "\(arguments): \(run.output.debugDescription)")
            let rates = RCUStressProcess.progressRates(run.output)
            let first = try XCTUnwrap(rates.first, "\(arguments): no progress line in \(run.output.debugDescription)")
            XCTAssertGreaterThan(first, 0, "\(arguments): \(run.output.debugDescription)")
            XCTAssertLessThanOrEqual(first, Double(counts.ops) * 1.01, "\(arguments): \(run.output.debugDescription)")
        }
    }
}
