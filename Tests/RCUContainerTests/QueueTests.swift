import Foundation
import RCU
import XCTest

/// What the queue stress test needs of a queue.
protocol StressQueue<Element>: AnyObject, Sendable {
    associatedtype Element
    func enqueue(_ element: consuming Element)
    func dequeue() -> Element?
}

extension WaitFreeQueue: StressQueue where Element == Tracked {}
extension LockFreeQueue: StressQueue where Element == Tracked {}

final class QueueTests: XCTestCase {
    // MARK: Semantics

    func testWaitFreeQueueIsFIFO() {
        let queue = WaitFreeQueue<Int>()
        XCTAssertTrue(queue.isEmpty)
        XCTAssertNil(queue.dequeue())
        for i in 0..<100 { queue.enqueue(i) }
        XCTAssertFalse(queue.isEmpty)
        XCTAssertEqual((0..<100).map { _ in queue.dequeue()! }, Array(0..<100))
        XCTAssertNil(queue.dequeue())
    }

    func testWaitFreeQueueSplice() {
        let destination = WaitFreeQueue<Int>()
        let source = WaitFreeQueue<Int>()
        for i in 0..<10 { destination.enqueue(i) }
        for i in 10..<25 { source.enqueue(i) }
        destination.splice(from: source)
        destination.splice(from: destination)
        XCTAssertTrue(source.isEmpty)
        source.enqueue(99)
        var drained: [Int] = []
        while let next = destination.dequeue() { drained.append(next) }
        XCTAssertEqual(drained, Array(0..<25))
        XCTAssertEqual(source.dequeue(), 99)
        destination.splice(from: source)  // empty source
        XCTAssertTrue(destination.isEmpty)
    }

    func testLockFreeQueueIsFIFOOnEveryFlavor() {
        func exercise<Flavor: RCUFlavor>(_: Flavor.Type) {
            let queue = LockFreeQueue<Int, Flavor>()
            XCTAssertNil(queue.dequeue())
            for i in 0..<100 { queue.enqueue(i) }
            XCTAssertEqual((0..<100).map { _ in queue.dequeue()! }, Array(0..<100))
            XCTAssertNil(queue.dequeue())
            queue.enqueue(7)
            XCTAssertEqual(queue.dequeue(), 7)
        }
        exercise(RCUMemb.self)
        exercise(RCUQSBR.self)
        exercise(RCUBulletproof.self)
        exercise(RCUMemoryBarrier.self)
    }

    func testQueuesFreeWhatTheyHoldOnDeinit() {
        let ledger = Ledger()
        do {
            let waitFree = WaitFreeQueue<Tracked>()
            let lockFree = LockFreeQueue<Tracked, RCUMemb>()
            for i in 0..<50 {
                waitFree.enqueue(Tracked(id: i, ledger: ledger))
                lockFree.enqueue(Tracked(id: 1000 + i, ledger: ledger))
            }
            _ = waitFree.dequeue()
            _ = lockFree.dequeue()
            XCTAssertEqual(ledger.freedCount, 2)
        }
        RCUMemb.barrier()
        XCTAssertEqual(ledger.freedCount, 100)
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    // MARK: Stress

    func testWaitFreeQueueStress() { runStress(WaitFreeQueue<Tracked>(), flavor: RCUMemb.self) }
    func testLockFreeQueueStressMemb() { runStress(LockFreeQueue<Tracked, RCUMemb>(), flavor: RCUMemb.self) }
    func testLockFreeQueueStressQSBR() { runStress(LockFreeQueue<Tracked, RCUQSBR>(), flavor: RCUQSBR.self) }
    func testLockFreeQueueStressBulletproof() {
        runStress(LockFreeQueue<Tracked, RCUBulletproof>(), flavor: RCUBulletproof.self)
    }
    func testLockFreeQueueStressMemoryBarrier() {
        runStress(LockFreeQueue<Tracked, RCUMemoryBarrier>(), flavor: RCUMemoryBarrier.self)
    }

    /// Splicing concurrently with producers and consumers loses and duplicates nothing.
    func testWaitFreeQueueSpliceStress() {
        let staging = WaitFreeQueue<Tracked>()
        let destination = WaitFreeQueue<Tracked>()
        let stop = Flag()
        let splicer = startThread(named: "splicer") {
            while !stop.isSet { destination.splice(from: staging) }
            destination.splice(from: staging)
        }
        runStress(destination, flavor: RCUMemb.self, producingInto: staging) { stop.set(); splicer.wait() }
    }

    /// Two producers enqueue numbered elements while two consumers dequeue:
    /// every element is dequeued exactly once, each producer's elements in
    /// order, and each is freed exactly once.
    func runStress<Queue: StressQueue, Flavor: RCUFlavor>(
        _ queue: Queue, flavor: Flavor.Type, producingInto producerQueue: Queue? = nil,
        whenProducersFinish: @escaping @Sendable () -> Void = {}
    ) where Queue.Element == Tracked {
        let ledger = Ledger()
        let target = producerQueue ?? queue
        let producersDone = Flag()
        let violations = Violations()
        let produced = Locked([Int](repeating: 0, count: 2))
        let consumed = Locked([Int]())
        let producers = (0..<2).map { producer in
            startThread(named: "producer-\(producer)") {
                let deadline = Date().addingTimeInterval(stressDuration)
                var count = 0
                while Date() < deadline || count < 2000 {
                    target.enqueue(Tracked(id: producer << 32 | count, key: producer, ledger: ledger))
                    count += 1
                }
                produced.withLock { $0[producer] = count }
            }
        }
        let consumers = (0..<2).map { consumer in
            startThread(named: "consumer-\(consumer)") {
                var last = [-1, -1]
                var mine: [Int] = []
                while true {
                    // Read the flag before trying: an empty queue after it was set is final.
                    let finished = producersDone.isSet
                    guard let element = queue.dequeue() else {
                        if finished { break }
                        continue
                    }
                    if !element.isAlive { violations.record("freed element \(element.id) dequeued") }
                    let sequence = element.id & 0xFFFF_FFFF
                    if sequence <= last[element.key] {
                        violations.record("producer \(element.key): \(sequence) after \(last[element.key])")
                    }
                    last[element.key] = sequence
                    mine.append(element.id)
                }
                consumed.withLock { $0 += mine }
            }
        }
        producers.forEach { $0.wait() }
        whenProducersFinish()
        producersDone.set()
        consumers.forEach { $0.wait() }

        XCTAssertEqual(violations.all, [])
        let counts = produced.withLock { $0 }
        let all = consumed.withLock { $0 }
        XCTAssertEqual(all.count, counts.reduce(0, +), "nothing lost or duplicated")
        var expected = Set<Int>()
        for producer in 0..<2 { for sequence in 0..<counts[producer] { expected.insert(producer << 32 | sequence) } }
        let seen = Set(all)
        XCTAssertTrue(seen == expected, "missing \(expected.subtracting(seen).sorted().prefix(8)), unexpected \(seen.subtracting(expected).sorted().prefix(8))")
        Flavor.barrier()
        XCTAssertEqual(ledger.freedCount, ledger.createdCount)
        XCTAssertEqual(ledger.doubleFrees, 0)
    }
}
