import Foundation
import RCU
import Synchronization
import Testing
import XCTest

final class ReclamationTests: XCTestCase {
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

extension PerFlavor {
    @Suite(.onTestThread) struct ReclamationTests {
        /// Every retired object is deinitialised exactly once, and all of them by `barrier()`.
        @Test(arguments: allFlavors)
        func retiredObjectsDeinitialisedExactlyOnce(_ flavor: any RCUFlavor.Type) { checkRetire(flavor) }

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
            #expect(ledger.createdCount == count)
            #expect(ledger.freedCount == count, "\(F.name): all retired objects freed after barrier()")
            #expect(ledger.doubleFrees == 0, "\(F.name): none freed twice")
            #expect(F.pendingCallbacks == 0, "\(F.name): backlog drained")
        }

        @Test(arguments: allFlavors)
        func retiredClosuresRunAfterBarrier(_ flavor: any RCUFlavor.Type) { checkClosures(flavor) }

        private func checkClosures<F: RCUFlavor>(_: F.Type) {
            let counter = Counter()
            for _ in 0..<100 {
                F.retire { counter.bump(F.self) }
            }
            #expect(!F.isInCallback)
            F.barrier()
            #expect(counter.runs.load(ordering: .relaxed) == 100)
            #expect(counter.inCallback.load(ordering: .relaxed) == 100, "\(F.name): callbacks know they are callbacks")
        }

        /// `retire(reclaiming:)`: `reclaim()` runs once, on a call_rcu worker, never while a reader
        /// that began before the retire is inside; the object is released after it.
        @Test(arguments: allFlavors)
        func retireReclaimingRunsAfterReadersLeave(_ flavor: any RCUFlavor.Type) { checkReclaiming(flavor) }

        private func checkReclaiming<F: RCUFlavor>(_: F.Type) {
            let ledger = Ledger()
            let counter = Counter()
            let inside = DispatchSemaphore(value: 0)
            let retired = DispatchSemaphore(value: 0)
            let ranWhileInside = Locked<Int?>(nil)
            let reader = startThread(named: "reclaim-reader-\(F.name)") {
                F.read { _ in
                    inside.signal()
                    retired.wait()
                    usleep(50_000)   // every chance for a (broken) early callback
                    ranWhileInside.withLock { $0 = counter.runs.load(ordering: .relaxed) }
                }
            }
            inside.wait()
            F.retire(reclaiming: Reclaimed(id: 1, ledger: ledger, counter: counter, flavor: F.self))
            retired.signal()
            reader.wait()
            F.barrier()
            #expect(ranWhileInside.withLock { $0 } == 0, "\(F.name): reclaimed under a reader")
            #expect(counter.runs.load(ordering: .relaxed) == 1, "\(F.name): reclaimed once")
            #expect(counter.inCallback.load(ordering: .relaxed) == 1, "\(F.name): on a call_rcu worker")
            #expect(ledger.isFreed(1), "\(F.name): released after reclaim()")
            #expect(ledger.doubleFrees == 0)
        }

        @Test(arguments: allFlavors)
        func deferRetireBatches(_ flavor: any RCUFlavor.Type) { checkDefer(flavor) }

        private func checkDefer<F: RCUFlavor>(_: F.Type) {
            let ledger = Ledger()
            onThread(named: "defer-\(F.name)") {
                for index in 0..<500 { F.deferRetire(Tracked(id: index, ledger: ledger)) }
                F.deferBarrier()
            }
            #expect(ledger.freedCount == 500, "\(F.name): defer_rcu batch ran")
            #expect(ledger.doubleFrees == 0)
        }
    }
}

/// An object that counts its own reclamation and records its deinit in a ledger.
final class Reclaimed<F: RCUFlavor>: RCUReclaimable {
    let id: Int
    let ledger: Ledger
    let counter: Counter
    init(id: Int, ledger: Ledger, counter: Counter, flavor _: F.Type) {
        self.id = id
        self.ledger = ledger
        self.counter = counter
        ledger.created()
    }
    func reclaim() { counter.bump(F.self) }
    deinit { ledger.freed(id) }
}

final class Counter: Sendable {
    let runs = Atomic<Int>(0)
    let inCallback = Atomic<Int>(0)
    func bump<F: RCUFlavor>(_: F.Type) {
        runs.add(1, ordering: .relaxed)
        if F.isInCallback { inCallback.add(1, ordering: .relaxed) }
    }
}
