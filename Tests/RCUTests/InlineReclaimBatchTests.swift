@testable import RCU
import XCTest

/// The expedited policy's batch: a retire that fills it reclaims exactly ``RCUInlineReclaimBatch/capacity``
/// callbacks, the oldest, even when a sweeper has put more back than fit.
final class InlineReclaimBatchTests: XCTestCase {
    private static let neverCalled: RCUCallbackFunction = { _ in fatalError("a gathered callback ran in a test of the batch's bookkeeping") }

    private func items(_ range: Range<Int>) -> [RCUInlineReclaimBatch.Item] {
        range.map { .init(function: Self.neverCalled, context: UnsafeMutableRawPointer(bitPattern: $0 + 1)!) }
    }

    private func ids(_ items: [RCUInlineReclaimBatch.Item]) -> [Int] { items.map { Int(bitPattern: $0.context) - 1 } }

    func testNoBatchUntilFull() {
        var gathered = items(0..<(RCUInlineReclaimBatch.capacity - 1))
        XCTAssertNil(RCUInlineReclaimBatch.takeFullBatch(from: &gathered))
        XCTAssertEqual(gathered.count, RCUInlineReclaimBatch.capacity - 1, "nothing taken")
    }

    func testFullBatchTakesAll() throws {
        var gathered = items(0..<RCUInlineReclaimBatch.capacity)
        let batch = try XCTUnwrap(RCUInlineReclaimBatch.takeFullBatch(from: &gathered))
        XCTAssertEqual(ids(batch), Array(0..<RCUInlineReclaimBatch.capacity))
        XCTAssertTrue(gathered.isEmpty)
    }

    /// A sweeper's rest put back in front of 300 gathered callbacks makes 700: the batch is the
    /// oldest 512, and 188 stay gathered (CI saw an inline count of 33,081 = 64 x 512 + 313).
    func testOverfullBatchTakesTheOldestCapacity() throws {
        let capacity = RCUInlineReclaimBatch.capacity
        var gathered = items(0..<(capacity + 188))
        let batch = try XCTUnwrap(RCUInlineReclaimBatch.takeFullBatch(from: &gathered))
        XCTAssertEqual(ids(batch), Array(0..<capacity))
        XCTAssertEqual(ids(gathered), Array(capacity..<(capacity + 188)))
        XCTAssertNil(RCUInlineReclaimBatch.takeFullBatch(from: &gathered), "the rest waits for more")
    }
}
