import Foundation
import XCTest
@testable import Lockdep

/// Was: `wait(_:timeoutNanoseconds:)` added the timeout to the clock's nanoseconds and trapped
/// on overflow for timeouts near `UInt64.max`. Now (`wait(_:timeout:)`, a `Duration`) every
/// timeout is valid: the deadline saturates, the largest waits until signalled, and zero or a
/// negative timeout returns at once.
final class ConditionOverflowTests: LockdepTestCase {
    func testAnyTimeoutIsValidAndMaxWaitsUntilSignalled() {
        let m = CheckedMutex(class: .unique("overflow.m"))
        let c = CheckedCondition("overflow.c")
        let signalled = Box()

        m.lock()
        XCTAssertFalse(c.wait(m, timeout: .zero), "a zero timeout times out at once")
        XCTAssertFalse(c.wait(m, timeout: .seconds(-5)), "a negative timeout times out at once")
        m.unlock()

        let huge: [Duration] = [
            .seconds(Int64.max), .seconds(Int64.max) - .nanoseconds(1), .seconds(Int64.max / 2),
            .nanoseconds(Int64.max), .seconds(999_999_999_999_999_999),
        ]
        for timeout in huge {
            let woken = DispatchSemaphore(value: 0)
            let waiting = DispatchSemaphore(value: 0)
            Thread {
                m.lock()
                waiting.signal()
                var result = true
                while signalled.items.isEmpty && result { result = c.wait(m, timeout: timeout) }
                signalled.items.removeAll()
                m.unlock()
                XCTAssertTrue(result, "timeout \(timeout): woken by the signal, not timed out")
                woken.signal()
            }.start()
            waiting.wait()
            usleep(20_000)         // let it block in the timed wait
            m.withLock {
                signalled.items.append(1)
                c.signal()
            }
            XCTAssertEqual(woken.wait(timeout: .now() + 10), .success, "timeout \(timeout): the waiter returned")
        }
        expectSilent()
    }
}
