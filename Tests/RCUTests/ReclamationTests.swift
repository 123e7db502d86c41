import Foundation
import RCU
import Synchronization
import XCTest

final class ReclamationTests: XCTestCase {
    /// Every retired object is deinitialised exactly once, and all of them by `barrier()`.
    func testRetiredObjectsDeinitialisedExactlyOncePerFlavor() {
        for flavor in allFlavors { checkRetire(flavor) }
    }

    private func checkRetire<F: RCUFlavor>(_: F.Type) {
        let ledger = Ledger()
        let count = 2_000
        let writers = (0..<2).map { writer in
            startThread(named: "retire-\(writer)") {
                for index in 0..<count / 2 {
                    F.retire(Tracked(id: writer * count + index, ledger: ledger))
                }
            }
        }
        writers.forEach { $0.wait() }
        F.barrier()
        XCTAssertEqual(ledger.createdCount, count)
        XCTAssertEqual(ledger.freedCount, count, "\(F.name): all retired objects freed after barrier()")
        XCTAssertEqual(ledger.doubleFrees, 0, "\(F.name): none freed twice")
        XCTAssertEqual(F.pendingCallbacks, 0, "\(F.name): backlog drained")
    }

    func testRetiredClosuresRunAfterBarrier() {
        for flavor in allFlavors { checkClosures(flavor) }
    }

    private func checkClosures<F: RCUFlavor>(_: F.Type) {
        let counter = Counter()
        for _ in 0..<100 {
            F.retire { counter.bump(F.self) }
        }
        XCTAssertFalse(F.primitiveIsInCallback)
        F.barrier()
        XCTAssertEqual(counter.runs.load(ordering: .relaxed), 100)
        XCTAssertEqual(counter.inCallback.load(ordering: .relaxed), 100, "\(F.name): callbacks know they are callbacks")
    }

    func testDeferRetireBatches() {
        for flavor in allFlavors { checkDefer(flavor) }
    }

    private func checkDefer<F: RCUFlavor>(_: F.Type) {
        let ledger = Ledger()
        onThread(named: "defer-\(F.name)") {
            for index in 0..<500 { F.deferRetire(Tracked(id: index, ledger: ledger)) }
            F.deferBarrier()
        }
        XCTAssertEqual(ledger.freedCount, 500, "\(F.name): defer_rcu batch ran")
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    func testCallbackWorkerPlacement() throws {
        let ledger = Ledger()
        try onThreadThrowing(named: "worker-placement") {
            XCTAssertFalse(RCUMemb.hasDedicatedCallbackWorker)
            try RCUMemb.useCallbackWorkers(.perThread)
            XCTAssertTrue(RCUMemb.hasDedicatedCallbackWorker)
            for index in 0..<50 { RCUMemb.retire(Tracked(id: index, ledger: ledger)) }
            RCUMemb.barrier()
            XCTAssertEqual(ledger.freedCount, 50, "callbacks ran on the dedicated worker")
            try RCUMemb.useCallbackWorkers(.perCPU)
            for index in 50..<100 { RCUMemb.retire(Tracked(id: index, ledger: ledger)) }
            try RCUMemb.useCallbackWorkers(.shared)
            XCTAssertFalse(RCUMemb.hasDedicatedCallbackWorker)
            RCUMemb.barrier()
            XCTAssertEqual(ledger.freedCount, 100, "callbacks of freed workers moved to the shared one")
        }
    }

    private func onThreadThrowing(named name: String, _ body: @escaping @Sendable () throws -> Void) throws {
        let failure = Locked<(any Error)?>(nil)
        onThread(named: name) {
            do { try body() } catch { failure.withLock { $0 = error } }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}

final class Counter: Sendable {
    let runs = Atomic<Int>(0)
    let inCallback = Atomic<Int>(0)
    func bump<F: RCUFlavor>(_: F.Type) {
        runs.add(1, ordering: .relaxed)
        if F.primitiveIsInCallback { inCallback.add(1, ordering: .relaxed) }
    }
}
