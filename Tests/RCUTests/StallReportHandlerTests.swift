import Foundation
@testable import RCU
import RCUTestSupport
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A custom stall handler that blocks (here: it waits for a grace period, which waits for the
/// stall it was handed) must not wedge the watchdog: the handler runs on a report thread of
/// its own, and the watchdog keeps finding stalls and says that the handler is stuck.
final class StallReportHandlerTests: XCTestCase {
    final class Box: @unchecked Sendable {
        let lock = NSLock()
        var stalls: [RCUStallDetector.Stall] = []
        var handlerThreads: Set<String> = []
        let blocked = Atomic<Int>(0)
        let returned = Atomic<Int>(0)
    }

    func testHandlerThatSynchronizesDoesNotStopTheWatchdog() {
        let previousThreshold = RCUStallDetector.threshold
        let previousHandler = RCUStallDetector.reportHandler
        defer {
            RCUStallDetector.threshold = previousThreshold
            RCUStallDetector.reportHandler = previousHandler
        }
        let box = Box()
        RCUStallDetector.threshold = .milliseconds(100)
        RCUStallDetector.reportHandler = .custom { stall in
            box.lock.withLock {
                box.stalls.append(stall)
                box.handlerThreads.insert(CurrentThread.name)
            }
            // The first stall of waiter A: wait for a grace period, which cannot end before
            // the reader that stalls A leaves.
            guard stall.waiterName == "stall-waiter-a", box.blocked.load(ordering: .relaxed) == 0 else { return }
            box.blocked.store(1, ordering: .relaxed)
            RCUMemb.synchronize()
            box.returned.store(1, ordering: .relaxed)
        }
        let reader = HeldReader<RCUMemb>(named: "stall-reader")
        let waiterA = startThread(named: "stall-waiter-a") { RCUMemb.synchronize() }
        func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while !condition() && Date() < deadline { usleep(5_000) }
            return condition()
        }
        XCTAssertTrue(waitUntil(10) { box.blocked.load(ordering: .relaxed) == 1 }, "the handler got A's stall")
        let foundBefore = RCUStallDetector.stallsFound.load(ordering: .relaxed)
        let noticesBefore = RCUStallDetector.stuckHandlerNotices.load(ordering: .relaxed)
        // While the handler blocks, another thread stalls: the watchdog (not in the handler)
        // finds it, and says the handler is stuck.
        let waiterB = startThread(named: "stall-waiter-b") { RCUMemb.synchronize() }
        let foundWhileBlocked = waitUntil(10) {
            RCUStallDetector.stallsFound.load(ordering: .relaxed) > foundBefore
                && RCUStallDetector.stuckHandlerNotices.load(ordering: .relaxed) > noticesBefore
        }
        let stillBlocked = box.returned.load(ordering: .relaxed) == 0
        reader.release()
        waiterA.wait()
        waiterB.wait()
        XCTAssertTrue(waitUntil(10) { box.returned.load(ordering: .relaxed) == 1 }, "the handler returned once the reader left")
        XCTAssertTrue(foundWhileBlocked, "the watchdog found a new stall and noticed the stuck handler while the handler blocked")
        XCTAssertTrue(stillBlocked, "the handler was still blocked when the watchdog found the new stall")
        box.lock.withLock {
            XCTAssertEqual(box.handlerThreads, ["rcu-stall-rpt"], "the handler ran on the report thread, not the watchdog")
            XCTAssertTrue(box.stalls.contains { $0.waiterName == "stall-waiter-a" && $0.blockingReaders.map(\.name) == ["stall-reader"] })
        }
    }
}
