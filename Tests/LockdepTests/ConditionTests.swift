import Foundation
import XCTest
@testable import Lockdep

final class ConditionTests: LockdepTestCase {
    func testProducerConsumer() {
        let m = CheckedMutex(class: .unique("queue->lock"))
        let c = CheckedCondition("queue->nonEmpty")
        let box = Box()
        let consumer = startThread(named: "consumer") {
            m.lock()
            while box.items.isEmpty { c.wait(m) }
            Lockdep.assertHeld(m)
            box.taken = box.items.removeFirst()
            m.unlock()
        }
        m.withLock { box.items.append(42); c.signal() }
        consumer.wait()
        m.withLock { XCTAssertEqual(box.taken, 42) }
        expectSilent()
    }

    func testWaitUnderSpinlockIsInvalid() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("m"))
        let s = CheckedSpinLock(class: .unique("s"))
        let c = CheckedCondition()
        m.lock()
        s.lock()
        _ = c.wait(m, timeout: .microseconds(1))
        s.unlock()
        m.unlock()
        XCTAssertEqual(collector.kinds.first, .sleepInInvalidContext)
    }

    func testTimedWaitTimesOut() {
        let m = CheckedMutex(class: .unique("m"))
        let c = CheckedCondition()
        m.lock()
        XCTAssertFalse(c.wait(m, timeout: .microseconds(1)))
        Lockdep.assertHeld(m)
        m.unlock()
        expectSilent()
    }
}

final class Box: @unchecked Sendable {
    var items: [Int] = []
    var taken = 0
}
