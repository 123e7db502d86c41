import Foundation
import XCTest

/// `rcu-stress containers`: usage errors, a short JSON run whose invariant counters are
/// zero, and the hidden broken mode that proves the list invariant can fail. Throughput
/// is only checked to be positive: timing thresholds belong to the benchmark.
final class ContainerCommandTests: XCTestCase {
    private func assertUsageError(_ arguments: [String], mentions text: String? = nil,
                                  file: StaticString = #filePath, line: UInt = #line) {
        StressCLI.assertUsageError(["containers"] + arguments, mentions: text,
                                              file: file, line: line)
    }

    func testBadArgumentsAreUsageErrors() throws {
        assertUsageError(["--duration", "0"], mentions: "--duration")
        assertUsageError(["--duration=-1"], mentions: "--duration")
        assertUsageError(["--duration", "nan"], mentions: "--duration")
        assertUsageError(["--readers", "0"], mentions: "--readers")
        assertUsageError(["--keys", "0"], mentions: "--keys")
        assertUsageError(["--list-length", "0"], mentions: "--list-length")
        assertUsageError(["--rounds", "0"], mentions: "--rounds")
        assertUsageError(["--single-thread-lookups", "-1"], mentions: "--single-thread-lookups")
        assertUsageError(["--keys", "many"])
    }

    func testShortJSONRunKeepsEveryInvariant() throws {
        let run = try RCUStressProcess.run(
            ["containers", "--duration", "0.1", "--rounds", "1", "--keys", "1000", "--list-length", "20",
             "--single-thread-lookups", "20000", "--json"])
        XCTAssertEqual(run.status, 0, run.output)
        let all = try StressJSON.objects(run)
        // The single-threaded comparison: one line per map, each a positive time per lookup.
        let singleThread = all.filter { $0["container"] as? String == "hashmap-single-thread" }
        XCTAssertEqual(singleThread.compactMap { $0["variant"] as? String }, ["Dictionary", "RCUDictionary<memb>"])
        for object in singleThread {
            let nanoseconds = try XCTUnwrap((object["ns_per_lookup"] as? NSNumber)?.doubleValue, "\(object)")
            XCTAssertGreaterThan(nanoseconds, 0, "\(object)")
            XCTAssertTrue(nanoseconds.isFinite, "a pass ran: \(object)")
        }
        let objects = all.filter { $0["container"] as? String != "hashmap-single-thread" }
        XCTAssertEqual(objects.compactMap { $0["variant"] as? String },
                       ["RCUHashMap<memb>", "RCUDictionary<memb>", "Dictionary+Mutex", "Dictionary+rwlock", "Dictionary, unlocked",
                        "RCUList<memb>", "Array+rwlock"])
        for object in objects {
            XCTAssertEqual(try StressJSON.int(object, "violations"), 0, "\(object)")
            XCTAssertEqual(try StressJSON.int(object, "readers"), 2, "\(object)")
            let reads = try XCTUnwrap((object["reads_per_s"] as? NSNumber)?.doubleValue, "\(object)")
            XCTAssertGreaterThan(reads, 0, "\(object)")
        }
    }

    /// A writer that replaces a list element by a removal and an append (two publications)
    /// lets readers see one element too few: the check catches it and the run fails.
    func testBrokenListReplacementFails() throws {
        let run = try RCUStressProcess.run(
            ["containers", "--break-list", "--writer-pause-us", "0", "--list-length", "10", "--duration", "0.3",
             "--single-thread-lookups", "0",
             "--rounds", "1", "--json"])
        XCTAssertEqual(run.status, 1, run.output)
        let list = try XCTUnwrap(StressJSON.objects(run).first { $0["variant"] as? String == "RCUList<memb>" })
        XCTAssertGreaterThan(try StressJSON.int(list, "violations"), 0, "\(list)")
        XCTAssertTrue(run.output.contains("broke their invariant"), run.output)
    }
}
