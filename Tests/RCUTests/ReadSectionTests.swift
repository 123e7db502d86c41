import Foundation
import RCU
import Synchronization
import Testing
import XCTest

final class ReadSectionTests: XCTestCase {
    func testExplicitRegistrationIsIdempotent() {
        onThread(named: "explicit") {
            RCUMemb.registerThread()
            RCUMemb.registerThread()
            XCTAssertTrue(RCUMemb.isThreadRegistered)
            RCUMemb.unregisterThread()
            XCTAssertFalse(RCUMemb.isThreadRegistered)
            RCUMemb.unregisterThread()
            RCUMemb.read { _ in XCTAssertTrue(RCUMemb.isThreadRegistered) }
        }
    }

    func testBulletproofRegistersItself() {
        onThread(named: "bp-reader") {
            XCTAssertFalse(RCUBulletproof.isThreadRegistered)
            RCUBulletproof.read { _ in XCTAssertTrue(RCUBulletproof.isThreadRegistered) }
        }
        RCUBulletproof.synchronize()
    }

    func testHasSysMembarrierIsReported() {
        // The value depends on the kernel; the flavors without the syscall always say false.
        _ = RCUMemb.hasSysMembarrier
        XCTAssertFalse(RCUMemoryBarrier.hasSysMembarrier)
        XCTAssertFalse(RCUQSBR.hasSysMembarrier)
    }
}

extension PerFlavor {
    @Suite(.onTestThread) struct ReadSectionTests {
        @Test(arguments: allFlavors)
        func nestedSections(_ flavor: any RCUFlavor.Type) { checkNesting(flavor) }

        private func checkNesting<F: RCUFlavor>(_: F.Type) {
            #expect(!F.isInReadSection, "\(F.name): outside any section")
            F.read { _ in
                #expect(F.isInReadSection, "\(F.name): outer section")
                F.read { _ in
                    F.read { _ in #expect(F.isInReadSection, "\(F.name): third level") }
                    #expect(F.isInReadSection, "\(F.name): back to second level")
                }
                #expect(F.isInReadSection, "\(F.name): back to outer")
            }
            #expect(!F.isInReadSection, "\(F.name): all sections closed")
        }

        @Test(arguments: allFlavors)
        func readReturnsAndRethrows(_ flavor: any RCUFlavor.Type) {
            struct Boom: Error {}
            func checkThrows<F: RCUFlavor>(_: F.Type) {
                #expect(F.read { _ in 42 } == 42)
                #expect(throws: (any Error).self) { try F.read { _ throws(Boom) in throw Boom() } }
                #expect(!F.isInReadSection, "\(F.name): a throwing body closes its section")
            }
            checkThrows(flavor)
        }

        /// memb, qsbr and mb, as before (bp: `testBulletproofRegistersItself`).
        @Test(arguments: [RCUMemb.self, RCUQSBR.self, RCUMemoryBarrier.self] as [any RCUFlavor.Type])
        func threadRegisteredAutomaticallyAndUnregisteredAtExit(_ flavor: any RCUFlavor.Type) {
            checkAutoRegistration(flavor)
        }

        private func checkAutoRegistration<F: RCUFlavor>(_: F.Type) {
            let before = F.registeredThreadCount
            let seen = Locked<(registeredBefore: Bool, registeredInside: Bool, countInside: Int)>((true, false, 0))
            onThread(named: "auto-\(F.name)") {
                let registeredBefore = F.isThreadRegistered
                F.read { _ in
                    seen.withLock { $0 = (registeredBefore, F.isThreadRegistered, F.registeredThreadCount) }
                }
                // Exits without unregistering.
            }
            let observed = seen.withLock { $0 }
            #expect(!observed.registeredBefore, "\(F.name): a new thread starts unregistered")
            #expect(observed.registeredInside, "\(F.name): the first read section registers the thread")
            #expect(observed.countInside == before + 1)
            // pthread key destructors run as the thread exits, just after the body returns.
            let deadline = Date().addingTimeInterval(5)
            while F.registeredThreadCount != before && Date() < deadline { usleep(1_000) }
            #expect(F.registeredThreadCount == before, "\(F.name): the exited thread was unregistered")
            F.synchronize()  // would hang on a dead registered reader
        }
    }

    @Suite(.onTestThread) struct RCUReaderTests {
        @Test(arguments: allFlavors)
        func readerRegistersAndReads(_ flavor: any RCUFlavor.Type) { checkReader(flavor) }

        private func checkReader<F: RCUFlavor>(_: F.Type) {
            let ledger = Ledger()
            let holder = PointerHolder<F>(Tracked(id: 1, value: 5, ledger: ledger))
            let before = F.registeredThreadCount
            let onReader = ThreadExpectations()
            onThread(named: "reader-\(F.name)") {
                F.withReader { reader in
                    onReader.expect(F.isThreadRegistered, "\(F.name)")
                    let value = reader.read { section in
                        reader.read { _ in holder.pointer.withValue(in: section) { $0.value } }
                    }
                    onReader.expectEqual(value, 5, "\(F.name)")
                }
                onReader.expect(F.isThreadRegistered, "\(F.name): registration outlives the scope, as after a section")
            }
            onReader.record()
            // The thread's exit unregisters it (a pthread key destructor, just after the body returns).
            let deadline = Date().addingTimeInterval(5)
            while F.registeredThreadCount != before && Date() < deadline { usleep(1_000) }
            #expect(F.registeredThreadCount == before, "\(F.name): the exited thread was unregistered")
            holder.pointer.replace(with: nil)
            F.barrier()
            #expect(ledger.isFreed(1), "\(F.name)")
        }
    }
}
