import Foundation
import XCTest

/// `rcu-stress flood`: a short flood of every flavor passes (bounded memory, retired =
/// reclaimed, no reader saw a reclaimed node, callbacks quiet at the end), and a bound the
/// flood cannot keep fails the run.
final class FloodCommandTests: XCTestCase {
    /// The default 64 MiB, except under a sanitizer: ThreadSanitizer's shadow memory and
    /// AddressSanitizer's quarantine of freed memory (256 MB) are not the backlog's.
    private let rssLimit = Sanitizer.any ? 2048 : 64

    func testShortFloodOfEveryFlavorPasses() throws {
        let start = ContinuousClock.now
        let run = try RCUStressProcess.run(
            ["flood", "--flavor", "all", "--duration", "0.3", "--rss-limit-mib", "\(rssLimit)", "--json"])
        let elapsed = start.duration(to: .now)
        XCTAssertEqual(run.status, 0, run.output)
        let objects = try StressJSON.objects(run)
        XCTAssertEqual(objects.compactMap { $0["flavor"] as? String }, ["memb", "qsbr", "bp", "mb"], run.output)
        for object in objects {
            let retired = try StressJSON.int(object, "retired")
            XCTAssertGreaterThan(retired, 1, "\(object)")
            XCTAssertEqual(try StressJSON.int(object, "reclaimed"), retired, "every retired object reclaimed: \(object)")
            XCTAssertEqual(try StressJSON.int(object, "bad_reads"), 0, "\(object)")
            XCTAssertGreaterThan(try StressJSON.int(object, "reads"), 0, "readers ran alongside: \(object)")
            XCTAssertEqual(object["quiet"] as? Bool, true, "\(object)")
            XCTAssertEqual(object["passed"] as? Bool, true, "\(object)")
            XCTAssertLessThanOrEqual(try StressJSON.int(object, "peak_rss_above_baseline_bytes"), rssLimit << 20, "\(object)")
            XCTAssertGreaterThan(try StressJSON.int(object, "backlog_peak"), 0, "\(object)")
            XCTAssertNotNil(object["reclaims_per_second"] as? Double, "\(object)")
        }
        // The documented bound: --duration + 5 s per flavor (a hang detector, not a benchmark).
        XCTAssertLessThan(elapsed, .seconds(4 * (0.3 + 5)), "\(elapsed)")
    }

    /// A memory bound below what the backlog's high-water mark holds fails the run, with the
    /// reason, after the figures.
    func testFloodPastTheRSSLimitFails() throws {
        let run = try RCUStressProcess.run(["flood", "--flavor", "memb", "--duration", "1", "--rss-limit-mib", "1", "--json"])
        XCTAssertEqual(run.status, 1, run.output)
        XCTAssertTrue(run.stderr.contains("flood FAILED: memb: peak RSS"), run.output)
        let object = try XCTUnwrap(try StressJSON.objects(run).first)
        XCTAssertEqual(object["passed"] as? Bool, false)
        XCTAssertGreaterThan(try StressJSON.int(object, "peak_rss_above_baseline_bytes"), 1 << 20)
        XCTAssertEqual(try StressJSON.int(object, "reclaimed"), try StressJSON.int(object, "retired"), "still all reclaimed")
    }

    /// The expedited policy: callers reclaim inline in batches of 512.
    func testExpeditedFloodReclaimsInline() throws {
        let run = try RCUStressProcess.run(
            ["flood", "--flavor", "memb", "--duration", "1", "--policy", "expedited", "--rss-limit-mib", "\(rssLimit)", "--json"])
        XCTAssertEqual(run.status, 0, run.output)
        let object = try XCTUnwrap(try StressJSON.objects(run).first)
        XCTAssertEqual(object["policy"] as? String, "expedited")
        XCTAssertEqual(try StressJSON.int(object, "reclaimed"), try StressJSON.int(object, "retired"), "\(object)")
        XCTAssertEqual(try StressJSON.int(object, "inline_reclamations") % 512, 0, "\(object)")
    }
}
