import Foundation
import XCTest

/// Every run ends within its duration plus a bounded start and stop, or its arguments are
/// refused with exit status 64 and a reason: `urcu`, `containers`, `read-cost` and `flood`.
///
/// The runs at the largest accepted values are timed only against generous ceilings, far
/// above what they take (a second or two in a debug build) and far below what the inputs
/// cost before they were bounded (minutes, or forever): a hang detector, not a benchmark.
final class CommandBoundsTests: XCTestCase {
    private func assertRefused(_ arguments: [String], mentions text: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        StressCLI.assertUsageError(arguments, mentions: text, file: file, line: line)
    }

    /// Runs `arguments`, asserts success, and returns the seconds it took.
    private func timedRun(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        let start = ContinuousClock.now
        let run = try RCUStressProcess.run(arguments)
        let elapsed = start.duration(to: .now)
        XCTAssertEqual(run.status, 0, run.output, file: file, line: line)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    // MARK: urcu

    func testUrcuLoopCountsPastTheBoundAreRefused() throws {
        assertRefused(["urcu", "1", "1", "0.1", "--flavor", "memb", "-c", "9000000000000000000"], mentions: "-c RDUR must be within 0...100000000")
        assertRefused(["urcu", "1", "1", "0.1", "--flavor", "memb", "-d", "9000000000000000000"], mentions: "-d WDELAY must be within")
        assertRefused(["urcu", "1", "1", "0.1", "--flavor", "memb", "-e", "9000000000000000000"], mentions: "-e WDUR must be within")
        assertRefused(["urcu", "1", "1", "0.1", "--flavor", "memb", "-c", "100000001"], mentions: "-c RDUR")
        assertRefused(["urcu", "1", "1", "0.1", "--flavor", "memb", "-c", "9e18"], mentions: "-c")
        assertRefused(["urcu", "1", "1", "0.1", "--flavor", "memb", "-b", "9000000000000000000"], mentions: "-b BATCH must be within")
    }

    func testUrcuThreadsPastThirtyTwoPerCPUAreRefused() throws {
        let cpus = ProcessInfo.processInfo.processorCount
        let limit = max(64, 32 * cpus)
        assertRefused(["urcu", "4096", "0", "0.1", "--flavor", "qsbr"], mentions: "32 per CPU")
        assertRefused(["urcu", "\(limit + 1)", "0", "0.1", "--flavor", "memb"], mentions: "At most \(limit) threads")
    }

    /// The largest loop counts end: the last read section, writer delay and write section
    /// each take at most 100,000,000 loops (about 0.1 s in release, 1 s in debug).
    func testUrcuAtTheLargestLoopCountsEnds() throws {
        // ThreadSanitizer makes each loop's atomic load cost about a microsecond: 100 s a loop.
        try XCTSkipIf(Sanitizer.thread, "100,000,000 instrumented loops take minutes under ThreadSanitizer")
        for option in ["-c", "-d", "-e"] {
            let seconds = try timedRun(["urcu", "1", "1", "0.1", "--flavor", "memb", option, "100000000", "--json"])
            XCTAssertLessThan(seconds, 60, "urcu \(option) 100000000 ran \(seconds) s for a 0.1 s run")
        }
    }

    /// The most threads accepted start and stop: qsbr readers spinning on the CPUs.
    func testUrcuAtTheThreadLimitEnds() throws {
        let limit = max(64, 32 * ProcessInfo.processInfo.processorCount)
        let seconds = try timedRun(["urcu", "\(limit)", "0", "0.1", "--flavor", "qsbr", "--json"])
        XCTAssertLessThan(seconds, 60, "urcu \(limit) 0 0.1 --flavor qsbr ran \(seconds) s")
    }

    // MARK: containers

    func testContainersWriterPausePastOneSecondIsRefused() throws {
        assertRefused(["containers", "--writer-pause-us", "3000000", "--duration", "0.1"], mentions: "--writer-pause-us must be at most 1000000")
    }

    /// The writer's pause ends at the stop: 18 variants of 0.1 s with a 1 s pause took
    /// 18 s and more when each variant waited out the pause; they now take about 2 s. (The
    /// single-threaded lookup comparison has no writer and is left out: 3 million lookups
    /// per round take seconds in this debug build.)
    func testContainersLongestPauseDoesNotOverrunTheVariants() throws {
        let seconds = try timedRun(["containers", "--writer-pause-us", "1000000", "--duration", "0.1", "--rounds", "3",
                                    "--single-thread-lookups", "0", "--json"])
        XCTAssertLessThan(seconds, 12, "18 variants of 0.1 s took \(seconds) s")
    }

    // MARK: read-cost

    func testReadCostIterationsPastTheBoundAreRefused() throws {
        assertRefused(["read-cost", "--iterations", "9223372036854775807"], mentions: "--iterations must be within 1...200000000")
        assertRefused(["read-cost", "--rounds", "101"], mentions: "--rounds must be within 1...100")
        assertRefused(["read-cost", "--iterations", "200000000", "--rounds", "8"], mentions: "at most 1400000000 read sections")
        assertRefused(["read-cost", "--rounds", "71"], mentions: "at most 1400000000 read sections")  // 71 x the default 20M
    }

    // MARK: flood

    func testFloodArgumentsOutOfRangeAreRefused() throws {
        assertRefused(["flood", "--duration", "0"], mentions: "--duration")
        assertRefused(["flood", "--duration", "3601"], mentions: "--duration")
        assertRefused(["flood", "--duration", "nan"], mentions: "--duration")
        assertRefused(["flood", "--writers", "0"], mentions: "--writers")
        assertRefused(["flood", "--writers", "65"], mentions: "--writers")
        assertRefused(["flood", "--readers", "65"], mentions: "--readers")
        assertRefused(["flood", "--rss-limit-mib", "0"], mentions: "--rss-limit-mib")
        assertRefused(["flood", "--policy", "unbounded"], mentions: "--policy")
    }
}

/// Whether this test process, and so the `rcu-stress` built with it, runs under a sanitizer:
/// its runtime's entry point is loaded, or the Makefile's TSAN_OPTIONS or ASAN_OPTIONS is set.
enum Sanitizer {
    static let thread = dlsym(nil, "__tsan_init") != nil || ProcessInfo.processInfo.environment["TSAN_OPTIONS"] != nil
    static let address = dlsym(nil, "__asan_init") != nil || ProcessInfo.processInfo.environment["ASAN_OPTIONS"] != nil
    static var any: Bool { thread || address }
}
