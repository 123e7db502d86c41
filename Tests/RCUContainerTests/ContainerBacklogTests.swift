import Foundation
import RCU
import Synchronization
import XCTest

/// Container removals go through the backlog policy: a removal storm is throttled and the
/// backlog stays near the high-water mark, with every removed element released once.
final class ContainerBacklogTests: XCTestCase {
    private let small = RCUBacklogPolicy(highWaterMark: 2_000, lowWaterMark: 1_000)
    /// Per writer: up to 64 callbacks between the shim's checks, one in flight; the hash map
    /// pays its throttle after its read section, one more callback each; a sampling step.
    private let slack = 2 * (64 + 2) + 64

    /// Two writers replace and remove list elements under the list's lock as fast as they can.
    func testListRemovalStormIsThrottled() {
        RCUMemb.backlogPolicy = small
        defer { RCUMemb.backlogPolicy = .standard }
        let ledger = Ledger()
        let lock = RCUWriterMutex()
        let list = RCUList<Tracked, RCUMemb>(lock: lock)
        let before = RCUMemb.backlog
        let peak = BacklogPeak()
        let sampler = peak.start()
        let perWriter = 20_000
        let hold = GracePeriodHold()
        let writers = (0..<2).map { writer in
            startThread(named: "list-\(writer)") {
                for index in 0..<perWriter {
                    let id = writer * perWriter + index
                    lock.withLock {
                        let node = list.append(Tracked(id: id, ledger: ledger))
                        if index % 2 == 0 {
                            list.remove(node)
                        } else {
                            // The replacement gets an id of its own past every writer's range.
                            list.remove(list.replace(node, with: Tracked(id: 2 * perWriter + id, ledger: ledger)))
                        }
                    }
                }
            }
        }
        hold.end(whenBacklogReaches: small.highWaterMark)
        writers.forEach { $0.wait() }
        peak.stop(sampler)
        RCUMemb.barrier()
        let after = RCUMemb.backlog
        let created = 2 * perWriter + perWriter     // every odd index also made a replacement
        XCTAssertLessThanOrEqual(peak.value, small.highWaterMark + slack, "backlog bounded")
        XCTAssertGreaterThan(after.throttledRetires, before.throttledRetires, "removals throttled")
        XCTAssertEqual(ledger.createdCount, created)
        XCTAssertEqual(ledger.freedCount, created, "every removed element released")
        XCTAssertEqual(ledger.doubleFrees, 0)
        XCTAssertEqual(RCUMemb.read { list.count(in: $0) }, 0)
    }

    /// Hash map removals happen inside read sections, where no wait is allowed: the entry is
    /// queued at once and the map waits once its section has ended. A reader holds up the
    /// grace periods until the writers have pushed the backlog past the mark (a slow build,
    /// ThreadSanitizer's, would otherwise let the worker keep up with them).
    func testHashMapRemovalStormIsThrottledAfterItsSection() {
        RCUMemb.backlogPolicy = small
        defer { RCUMemb.backlogPolicy = .standard }
        let ledger = Ledger()
        let map = RCUHashMap<Int, Tracked, RCUMemb>()
        let before = RCUMemb.backlog
        let peak = BacklogPeak()
        let sampler = peak.start()
        let reader = HeldReader<RCUMemb>(named: "map-holder")
        let perWriter = 20_000
        let writers = (0..<2).map { writer in
            startThread(named: "map-\(writer)") {
                for index in 0..<perWriter {
                    let id = writer * perWriter + index
                    let key = writer * 64 + index % 64
                    map.updateValue(Tracked(id: id, ledger: ledger), forKey: key)
                    if index % 3 == 0 { map.removeValue(forKey: key) }
                }
            }
        }
        // Until the writers are throttled (they wait for the drain, which waits for the reader).
        while !RCUMemb.backlog.isThrottling { usleep(1_000) }
        usleep(50_000)
        reader.release()
        writers.forEach { $0.wait() }
        peak.stop(sampler)
        map.removeAll()
        RCUMemb.barrier()
        let after = RCUMemb.backlog
        XCTAssertLessThanOrEqual(peak.value, small.highWaterMark + slack, "backlog bounded")
        XCTAssertGreaterThan(after.throttledRetires, before.throttledRetires, "map writers throttled after their sections")
        XCTAssertEqual(ledger.freedCount, 2 * perWriter, "every replaced or removed value released")
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    /// A map removal inside the caller's own read section neither waits nor throttles later.
    func testHashMapRemovalInsideReadSectionDoesNotWait() {
        RCUMemb.backlogPolicy = RCUBacklogPolicy(highWaterMark: 100, lowWaterMark: 50, maximumWaitWithoutProgress: .seconds(60))
        defer { RCUMemb.backlogPolicy = .standard }
        let ledger = Ledger()
        let map = RCUHashMap<Int, Tracked, RCUMemb>()
        let before = RCUMemb.backlog
        let start = ContinuousClock.now
        onThread(named: "map-in-section") {
            RCUMemb.read { _ in
                for index in 0..<1_000 { map.updateValue(Tracked(id: index, ledger: ledger), forKey: 0) }
            }
        }
        XCTAssertLessThan(start.duration(to: .now), .seconds(5), "no wait inside the section")
        let after = RCUMemb.backlog
        map.removeAll()       // outside any section: may be throttled
        RCUMemb.barrier()
        XCTAssertEqual(after.throttledRetires, before.throttledRetires)
        XCTAssertGreaterThan(after.retiresPastHighWaterWithoutWaiting, before.retiresPastHighWaterWithoutWaiting,
                             "queued past the mark inside the section, counted")
        XCTAssertEqual(ledger.freedCount, 1_000)
    }

    /// Dequeues (which free their queue node inside a read section) are throttled after it.
    func testLockFreeQueueDequeueStormIsThrottled() {
        RCUMemb.backlogPolicy = small
        defer { RCUMemb.backlogPolicy = .standard }
        let queue = LockFreeQueue<Int, RCUMemb>()
        let before = RCUMemb.backlog
        let peak = BacklogPeak()
        let sampler = peak.start()
        let perWriter = 30_000
        let sums = Atomic<Int>(0)
        let hold = GracePeriodHold()
        let writers = (0..<2).map { writer in
            startThread(named: "queue-\(writer)") {
                var sum = 0
                for index in 0..<perWriter {
                    queue.enqueue(index)
                    sum += queue.dequeue() ?? 0
                }
                sums.add(sum, ordering: .relaxed)
            }
        }
        hold.end(whenBacklogReaches: small.highWaterMark)
        writers.forEach { $0.wait() }
        peak.stop(sampler)
        var rest = 0
        while let value = queue.dequeue() { rest += value }
        RCUMemb.barrier()
        XCTAssertEqual(sums.load(ordering: .relaxed) + rest, 2 * (perWriter * (perWriter - 1) / 2), "enqueued = dequeued")
        XCTAssertLessThanOrEqual(peak.value, small.highWaterMark + slack, "backlog bounded")
        XCTAssertGreaterThan(RCUMemb.backlog.throttledRetires, before.throttledRetires)
        XCTAssertEqual(RCUMemb.pendingCallbacks, 0)
    }
}
