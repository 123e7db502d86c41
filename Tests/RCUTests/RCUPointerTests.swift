import Foundation
import RCU
import Synchronization
import Testing
import XCTest

final class RCUPointerTests: XCTestCase {
    func testExchangeKeepsOldAliveForCallerAndRetiresIt() {
        let ledger = Ledger()
        let pointer = RCUPointer<Tracked, RCUMemb>(Tracked(id: 1, ledger: ledger))
        var old = pointer.exchange(Tracked(id: 2, ledger: ledger))
        XCTAssertEqual(old?.id, 1)
        RCUMemb.barrier()
        XCTAssertFalse(ledger.isFreed(1), "the caller still holds the exchanged object")
        old = nil
        XCTAssertTrue(ledger.isFreed(1), "the pointer's reference was retired by the barrier, the caller's just dropped")
        XCTAssertNil(old)
    }

    func testCompareExchange() {
        let ledger = Ledger()
        let first = Tracked(id: 1, ledger: ledger)
        let pointer = RCUPointer<Tracked, RCUMemb>(first)
        let other = Tracked(id: 9, ledger: ledger)

        let miss = pointer.compareExchange(expected: other, desired: Tracked(id: 2, ledger: ledger))
        XCTAssertFalse(miss.exchanged)
        XCTAssertTrue(miss.original === first)
        XCTAssertEqual(RCUMemb.read { pointer.withValue(in: $0) { $0.id } }, 1)

        let hit = pointer.compareExchange(expected: first, desired: Tracked(id: 3, ledger: ledger))
        XCTAssertTrue(hit.exchanged)
        XCTAssertEqual(RCUMemb.read { pointer.withValue(in: $0) { $0.id } }, 3)
        RCUMemb.barrier()
        XCTAssertTrue(ledger.isFreed(2), "the rejected desired object is released")
        XCTAssertFalse(ledger.isFreed(1), "the test still holds `first`")
    }

    func testReplaceAndSynchronizeReleasesOnCaller() {
        let ledger = Ledger()
        let pointer = RCUPointer<Tracked, RCUMemb>(Tracked(id: 1, ledger: ledger))
        pointer.replaceAndSynchronize(with: Tracked(id: 2, ledger: ledger))
        XCTAssertTrue(ledger.isFreed(1), "released before replaceAndSynchronize returns, without a barrier")
    }
}

extension PerFlavor {
    @Suite(.onTestThread) struct RCUPointerTests {
        @Test(arguments: allFlavors)
        func publishLoadReplace(_ flavor: any RCUFlavor.Type) { checkPublishLoadReplace(flavor) }

        private func checkPublishLoadReplace<F: RCUFlavor>(_: F.Type) {
            let ledger = Ledger()
            do {
                let pointer = RCUPointer<Tracked, F>(Tracked(id: 1, value: 10, ledger: ledger))
                #expect(F.read { pointer.withValue(in: $0) { $0.value } } == 10)
                pointer.replace(with: Tracked(id: 2, value: 20, ledger: ledger))
                #expect(F.read { pointer.withValue(in: $0) { $0.value } } == 20)
                pointer.replace(with: nil)
                #expect(F.read { pointer.withValue(in: $0) { $0.value } } == nil)
                let strong = F.read { pointer.load(in: $0) }
                #expect(strong == nil)
                pointer.replace(with: Tracked(id: 3, value: 30, ledger: ledger))
                #expect(pointer.withProtectedValue { $0.id } == 3)
            }
            F.barrier()
            #expect(ledger.freedCount == 3, "\(F.name): every object, including the one the pointer held at deinit")
            #expect(ledger.doubleFrees == 0)
        }

        /// A reader inside its section keeps a replaced object alive; it is freed only after the reader leaves.
        @Test(arguments: allFlavors)
        func readerNeverSeesRetiredObjectFreedInsideItsSection(_ flavor: any RCUFlavor.Type) {
            checkReaderProtection(flavor)
        }

        private func checkReaderProtection<F: RCUFlavor>(_: F.Type) {
            let ledger = Ledger()
            let holder = PointerHolder<F>(Tracked(id: 1, ledger: ledger))
            let loaded = DispatchSemaphore(value: 0)
            let replaced = DispatchSemaphore(value: 0)
            let freedWhileInside = Locked<Bool?>(nil)
            let onReader = ThreadExpectations()

            let reader = startThread(named: "reader-\(F.name)") {
                F.read { section in
                    holder.pointer.withValue(in: section) { object in
                        loaded.signal()
                        replaced.wait()
                        // Give the call_rcu worker every chance to run a (broken) early free.
                        usleep(50_000)
                        freedWhileInside.withLock { $0 = ledger.isFreed(object.id) }
                        onReader.expectEqual(object.value, 0)
                    }
                }
            }
            loaded.wait()
            holder.pointer.replace(with: Tracked(id: 2, ledger: ledger))
            replaced.signal()
            reader.wait()
            onReader.record()
            F.barrier()
            #expect(freedWhileInside.withLock { $0 } == false, "\(F.name): object freed under a reader")
            #expect(ledger.isFreed(1), "\(F.name): freed once the reader left and the barrier ran")
        }
    }
}

/// A class holding a pointer, the way users share one between threads.
final class PointerHolder<F: RCUFlavor>: Sendable {
    let pointer: RCUPointer<Tracked, F>
    init(_ initial: Tracked?) { pointer = RCUPointer(initial) }
}
