import Foundation
import RCU
import XCTest

/// liburcu's queue benchmarks' end-of-run checks (tests/benchmark/test_urcu_wfcq.c,
/// test_urcu_lfq.c: `successful enqueues = successful dequeues + end dequeues`,
/// else "WARNING! Discrepancy") on ``WaitFreeQueue`` and ``LockFreeQueue``, under
/// concurrent enqueuers and dequeuers, plus what liburcu does not check: each
/// dequeuer sees every enqueuer's elements in the order they were enqueued, no
/// element twice, and every element is freed once drained (counted by deinit).
///
/// liburcu's stack tests (test_urcu_wfs, test_urcu_lfs) have no counterpart: the
/// package has no stack.
///
/// Short by default (0.1 s per run); `SWIFT_RCU_REGTEST=full` runs 1 s.
final class QueueRegressionTests: XCTestCase {
    private var seconds: Double { ProcessInfo.processInfo.environment["SWIFT_RCU_REGTEST"] == "full" ? 1 : 0.1 }
    private let enqueuers = 2
    private let dequeuers = 2

    /// `test_urcu_wfcq 2 2 <seconds> -q`: dequeuers take one element at a time.
    func testWaitFreeQueueDequeue() {
        let queue = WaitFreeQueue<QueueItem>()
        check("test_urcu_wfcq -q", enqueue: { queue.enqueue($0) }, dequeue: { queue.dequeue() },
              batch: nil, drain: { queue.dequeue() })
        XCTAssertTrue(queue.isEmpty)
    }

    /// `test_urcu_wfcq 2 2 <seconds> -s` (liburcu's default): dequeuers splice the whole
    /// queue into a queue of their own and drain that.
    func testWaitFreeQueueSplice() {
        let queue = WaitFreeQueue<QueueItem>()
        check("test_urcu_wfcq -s", enqueue: { queue.enqueue($0) }, dequeue: { nil },
              batch: {
                  let local = WaitFreeQueue<QueueItem>()
                  local.splice(from: queue)
                  var items: [QueueItem] = []
                  while let item = local.dequeue() { items.append(item) }
                  return items
              },
              drain: { queue.dequeue() })
        XCTAssertTrue(queue.isEmpty)
    }

    /// `test_urcu_lfq 2 2 <seconds>` for every flavor.
    func testLockFreeQueuePerFlavor() {
        lockFree(RCUMemb.self)
        lockFree(RCUQSBR.self)
        lockFree(RCUBulletproof.self)
        lockFree(RCUMemoryBarrier.self)
    }

    private func lockFree<F: RCUFlavor>(_: F.Type) {
        let queue = LockFreeQueue<QueueItem, F>()
        check("\(F.name) test_urcu_lfq", enqueue: { queue.enqueue($0) }, dequeue: { queue.dequeue() },
              batch: nil, drain: { queue.dequeue() })
        XCTAssertNil(queue.dequeue())
        F.barrier()   // the dequeued nodes' call_rcu frees
    }

    /// Runs enqueuers and dequeuers for `seconds`, drains the queue and checks the counts.
    private func check(
        _ label: String,
        enqueue: @escaping @Sendable (QueueItem) -> Void,
        dequeue: @escaping @Sendable () -> QueueItem?,
        batch: (@Sendable () -> [QueueItem])?,
        drain: () -> QueueItem?
    ) {
        let live = LiveValues()
        let stop = Flag()
        let enqueued = Locked([Int](repeating: 0, count: enqueuers))
        let order = QueueOrder(enqueuers: enqueuers)
        let dequeuedCount = Locked(0)
        var done: [TestThread] = []
        let enqueuers = enqueuers
        for producer in 0..<enqueuers {
            done.append(startThread(named: "enqueuer-\(producer)") {
                var sequence = 0
                while !stop.isSet {
                    enqueue(QueueItem(producer: producer, sequence: sequence, live: live))
                    sequence += 1
                }
                enqueued.withLock { $0[producer] = sequence }
            })
        }
        for consumer in 0..<dequeuers {
            done.append(startThread(named: "dequeuer-\(consumer)") {
                var last = [Int](repeating: -1, count: enqueuers)
                var taken: [[Int]] = Array(repeating: [], count: enqueuers)
                var misordered = 0
                func take(_ item: QueueItem) {
                    if item.sequence <= last[item.producer] { misordered += 1 }
                    last[item.producer] = item.sequence
                    taken[item.producer].append(item.sequence)
                }
                while !stop.isSet {
                    if let batch {
                        batch().forEach(take)
                    } else if let item = dequeue() {
                        take(item)
                    }
                }
                order.misordered(misordered)
                order.record(taken)
                dequeuedCount.withLock { $0 += taken.reduce(0) { $0 + $1.count } }
            })
        }
        usleep(UInt32(seconds * 1_000_000))
        stop.set()
        done.forEach { $0.wait() }

        var endDequeues = 0
        var drained: [[Int]] = Array(repeating: [], count: enqueuers)
        while let item = drain() {
            drained[item.producer].append(item.sequence)
            endDequeues += 1
        }
        order.record(drained)
        let successfulEnqueues = enqueued.withLock { $0.reduce(0, +) }
        let successfulDequeues = dequeuedCount.withLock { $0 }
        XCTAssertGreaterThan(successfulEnqueues, 0, label)
        XCTAssertGreaterThan(successfulDequeues, 0, "\(label): dequeuers made progress")
        XCTAssertEqual(successfulEnqueues, successfulDequeues + endDequeues,
                       "\(label): successful enqueues vs successful dequeues + end dequeues (\(endDequeues))")
        XCTAssertEqual(order.misorderings, 0, "\(label): a dequeuer saw an enqueuer's elements out of order")
        XCTAssertEqual(order.duplicates, 0, "\(label): an element dequeued twice")
        XCTAssertEqual(order.seen, enqueued.withLock { $0 }, "\(label): each enqueuer's elements all dequeued once")
        XCTAssertTrue(live.waitForZero(), "\(label): \(live.count) elements alive after the drain")
    }
}

/// A queue element: its enqueuer and sequence number, counted alive.
final class QueueItem: Sendable {
    let producer: Int
    let sequence: Int
    let live: LiveValues

    init(producer: Int, sequence: Int, live: LiveValues) {
        self.producer = producer
        self.sequence = sequence
        self.live = live
        live.created(1)
    }

    deinit { live.destroyed(1) }
}

/// Which elements of each enqueuer were dequeued (each at most once), and order violations.
final class QueueOrder: Sendable {
    private struct State {
        var seen: [Set<Int>]
        var duplicates = 0
        var misorderings = 0
    }
    private let state: Locked<State>

    init(enqueuers: Int) { state = Locked(State(seen: Array(repeating: [], count: enqueuers))) }

    /// Records a thread's dequeued sequence numbers, per enqueuer.
    func record(_ sequences: [[Int]]) {
        state.withLock { state in
            for (producer, numbers) in sequences.enumerated() {
                for number in numbers where !state.seen[producer].insert(number).inserted { state.duplicates += 1 }
            }
        }
    }

    func misordered(_ count: Int) { state.withLock { $0.misorderings += count } }

    var duplicates: Int { state.withLock { $0.duplicates } }
    var misorderings: Int { state.withLock { $0.misorderings } }
    /// Per enqueuer, how many distinct elements were dequeued.
    var seen: [Int] { state.withLock { $0.seen.map(\.count) } }
}
