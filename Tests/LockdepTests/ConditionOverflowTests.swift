import Foundation
import XCTest
@testable import Lockdep

/// Was: `wait(_:timeoutNanoseconds:)` added the timeout to the clock's nanoseconds and trapped
/// on overflow for timeouts near `UInt64.max`. Now every timeout is valid: the deadline
/// saturates, `.max` waits until signalled, and 0 returns at once.
final class ConditionOverflowTests: LockdepTestCase {
    func testAnyTimeoutIsValidAndMaxWaitsUntilSignalled() {
        let m = CheckedMutex(class: .unique("overflow.m"))
        let c = CheckedCondition("overflow.c")
        let signalled = Box()

        m.lock()
        XCTAssertFalse(c.wait(m, timeoutNanoseconds: 0), "a zero timeout times out at once")
        m.unlock()

        for timeout: UInt64 in [.max, .max - 1, UInt64(Int64.max), UInt64(Int64.max) + 1, 999_999_999_999_999_999] {
            let woken = DispatchSemaphore(value: 0)
            let waiting = DispatchSemaphore(value: 0)
            Thread {
                m.lock()
                waiting.signal()
                var result = true
                while signalled.items.isEmpty && result { result = c.wait(m, timeoutNanoseconds: timeout) }
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
